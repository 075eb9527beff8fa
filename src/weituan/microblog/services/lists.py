"""Follow lists (Weibo's 分组, Mastodon's lists): a user names groups of the accounts they follow and
reads each as a timeline.

Every refusal is checked before anything is written, inside one transaction, so a refused request
changes nothing: a list over the cap is not made, and of several accounts added at once either all
join or none does.
"""

from collections.abc import Sequence
from typing import Any

from django.db import transaction

from weituan.accounts.queries import users_by_ids
from weituan.core.errors import NotFound, ValidationFailed
from weituan.microblog.models import Follow, FollowList, FollowListMember, RepliesPolicy
from weituan.microblog.queries.lists import follow_list_for_owner
from weituan.microblog.services.relations import accounts_lock

# As many lists as Mastodon lets an account keep.
LISTS_MAX = 50
# Members of one list: its timeline walks each member's posts, so a list stays a group, not everyone.
LIST_MEMBERS_MAX = 500
# A title in characters, short enough for a tab on a phone.
LIST_TITLE_MAX = 50


def list_title_clean(title: str | None) -> str:
    """The title as kept: trimmed, not blank (`title_blank`), at most LIST_TITLE_MAX characters
    (`title_too_long`)."""
    cleaned = (title or "").strip()
    if not cleaned:
        raise ValidationFailed("A list needs a title", code="title_blank", field="title")
    if len(cleaned) > LIST_TITLE_MAX:
        raise ValidationFailed(
            f"A list's title is at most {LIST_TITLE_MAX} characters", code="title_too_long", field="title"
        )
    return cleaned


def _replies_policy_clean(policy: str | None) -> str | None:
    if policy is None:
        return None
    if policy not in RepliesPolicy.values:
        raise ValidationFailed(
            "replies_policy must be followed, list or none",
            code="invalid_replies_policy",
            field="replies_policy",
        )
    return policy


def _exclusive_refused(exclusive: bool | None) -> None:
    """Exclusive lists (members' posts kept out of the home timeline) are not offered: the home
    timeline is filled as posts are written, without regard to lists, and would still show them."""
    if exclusive:
        raise ValidationFailed(
            "Exclusive lists are not supported here: members' posts stay in the home timeline",
            code="exclusive_not_supported",
            field="exclusive",
        )


def follow_list_create(
    *, owner: Any, title: str | None, replies_policy: str | None = None, exclusive: bool | None = None
) -> FollowList:
    """A new, empty list of `owner`'s. Refused: a blank or too long title, an unknown replies policy,
    `exclusive` true, and a list beyond LISTS_MAX (`list_limit`, counted under the owner's lock so two
    made at once cannot both pass it)."""
    cleaned = list_title_clean(title)
    policy = _replies_policy_clean(replies_policy) or RepliesPolicy.LIST
    _exclusive_refused(exclusive)
    with transaction.atomic():
        accounts_lock([owner.pk])
        if FollowList.objects.filter(owner_id=owner.pk).count() >= LISTS_MAX:
            raise ValidationFailed(
                f"You can keep at most {LISTS_MAX} lists: delete one first", code="list_limit"
            )
        return FollowList.objects.create(owner_id=owner.pk, title=cleaned, replies_policy=policy)


def follow_list_update(
    *,
    owner: Any,
    list_id: int,
    title: str | None = None,
    replies_policy: str | None = None,
    exclusive: bool | None = None,
) -> FollowList:
    """Rename the list or change its replies policy; what is None stays as it was. Someone else's list
    is `not_found`, as one that does not exist."""
    cleaned = list_title_clean(title) if title is not None else None
    policy = _replies_policy_clean(replies_policy)
    _exclusive_refused(exclusive)
    follow_list = follow_list_for_owner(owner.pk, list_id)
    changes: dict[str, Any] = {}
    if cleaned is not None:
        changes["title"] = cleaned
    if policy is not None:
        changes["replies_policy"] = policy
    if changes:
        FollowList.objects.filter(id=follow_list.pk).update(**changes)
        for name, value in changes.items():
            setattr(follow_list, name, value)
    return follow_list


def follow_list_delete(*, owner: Any, list_id: int) -> None:
    """Delete the list and its memberships (the accounts stay followed)."""
    with transaction.atomic():
        accounts_lock([owner.pk])
        follow_list = follow_list_for_owner(owner.pk, list_id)
        FollowList.objects.filter(id=follow_list.pk).delete()


def _account_ids_clean(account_ids: Sequence[int]) -> list[int]:
    wanted = list(dict.fromkeys(account_ids))
    if not wanted:
        raise ValidationFailed(
            "Name the accounts in account_ids[]", code="account_ids_missing", field="account_ids"
        )
    if len(wanted) > LIST_MEMBERS_MAX:
        raise ValidationFailed(
            f"A list holds at most {LIST_MEMBERS_MAX} accounts",
            code="list_members_limit",
            field="account_ids",
        )
    return wanted


def follow_list_members_add(*, owner: Any, list_id: int, account_ids: Sequence[int]) -> int:
    """Add accounts `owner` follows to the list; returns how many joined (those already in it stay, and
    are not counted). Refused, adding none: an unknown account (`account_not_found`), one the owner does not
    follow (`not_following`, oneself included), and a list that would pass LIST_MEMBERS_MAX
    (`list_members_limit`).

    The owner's and the accounts' relation locks are taken first, lowest id first, as an unfollow takes
    them: an account unfollowed at the same moment is either refused here or removed by the unfollow."""
    wanted = _account_ids_clean(account_ids)
    follow_list_for_owner(owner.pk, list_id)
    known = users_by_ids(wanted)
    if any(account_id not in known for account_id in wanted):
        raise NotFound("No such account", code="account_not_found")
    with transaction.atomic():
        accounts_lock([owner.pk, *wanted])
        # Read again under the owner's lock, which deleting a list takes too.
        follow_list = follow_list_for_owner(owner.pk, list_id)
        followed = set(
            Follow.objects.filter(follower_id=owner.pk, followee_id__in=wanted).values_list(
                "followee_id", flat=True
            )
        )
        strangers = [account_id for account_id in wanted if account_id not in followed]
        if strangers:
            raise ValidationFailed(
                "Only accounts you follow can be added to a list",
                code="not_following",
                account_ids=[str(account_id) for account_id in strangers],
            )
        # Locked with the owner's row: the count and the rows added cannot be raced by another add.
        members = FollowListMember.objects.filter(follow_list_id=follow_list.pk)
        present = set(members.filter(account_id__in=wanted).values_list("account_id", flat=True))
        joining = [account_id for account_id in wanted if account_id not in present]
        if members.count() + len(joining) > LIST_MEMBERS_MAX:
            raise ValidationFailed(
                f"A list holds at most {LIST_MEMBERS_MAX} accounts: remove some first",
                code="list_members_limit",
            )
        FollowListMember.objects.bulk_create(
            [FollowListMember(follow_list_id=follow_list.pk, account_id=account_id) for account_id in joining]
        )
    return len(joining)


def follow_list_members_remove(*, owner: Any, list_id: int, account_ids: Sequence[int]) -> int:
    """Take accounts out of the list; returns how many left it (an account not in it is no error)."""
    wanted = _account_ids_clean(account_ids)
    follow_list = follow_list_for_owner(owner.pk, list_id)
    deleted, _ = FollowListMember.objects.filter(
        follow_list_id=follow_list.pk, account_id__in=wanted
    ).delete()
    return deleted
