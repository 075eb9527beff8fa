"""Follow list reads (Weibo's 分组, Mastodon's lists): the owner's lists, and the accounts in one.

A list is its owner's alone: every read takes the owner, and someone else's list is not found, as one
that does not exist.
"""

from django.db.models import Count

from weituan.core.errors import NotFound
from weituan.core.ids import MAX_ID
from weituan.microblog.models import FollowList, FollowListMember
from weituan.microblog.queries.paging import id_page
from weituan.microblog.queries.relations import RelationRow


def follow_list_for_owner(owner_id: int, list_id: int) -> FollowList:
    """The list `list_id` if `owner_id` owns it; `not_found` otherwise."""
    found = (
        FollowList.objects.filter(id=list_id, owner_id=owner_id).first() if 0 < list_id <= MAX_ID else None
    )
    if found is None:
        raise NotFound("Record not found", code="not_found")
    return found


def follow_lists_of(owner_id: int) -> list[FollowList]:
    """The owner's lists, oldest first (the order they were made, as Mastodon lists them)."""
    return list(FollowList.objects.filter(owner_id=owner_id).order_by("id"))


def follow_lists_counted(owner_id: int) -> list[tuple[FollowList, int]]:
    """The owner's lists, oldest first, each with how many accounts it holds."""
    rows = FollowList.objects.filter(owner_id=owner_id).annotate(size=Count("members")).order_by("id")
    return [(row, int(row.size)) for row in rows]


def follow_lists_with_account(owner_id: int, account_id: int) -> list[FollowList]:
    """The owner's lists that hold `account_id`, oldest first."""
    held = FollowListMember.objects.filter(account_id=account_id).values("follow_list_id")
    return list(FollowList.objects.filter(owner_id=owner_id, id__in=held).order_by("id"))


def follow_list_member_ids(list_id: int) -> list[int]:
    """Every account in the list, the last added first."""
    rows = FollowListMember.objects.filter(follow_list_id=list_id).order_by("-id")
    return list(rows.values_list("account_id", flat=True))


def follow_list_members_page(
    list_id: int,
    *,
    max_id: int | None = None,
    since_id: int | None = None,
    min_id: int | None = None,
    limit: int = 40,
) -> list[RelationRow]:
    """The accounts in the list, the last added first, paged by membership."""
    rows = FollowListMember.objects.filter(follow_list_id=list_id).values_list("id", "account_id")
    page = id_page(rows, max_id=max_id, since_id=since_id, min_id=min_id, limit=limit)
    return [RelationRow(cursor=cursor, user_id=account_id) for cursor, account_id in page]
