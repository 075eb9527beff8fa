"""Keyword filters (屏蔽关键词, Mastodon's filters): making, changing and removing a reader's filters,
their keywords and their posts.

Every input is checked before anything is written, and each change is one transaction: a refused
request leaves the filter as it was. Each change, once committed, is told to the owner's open `user`
streams once (`filters_changed`, as Mastodon tells them), so their clients fetch the filters again.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from weituan.core.errors import NotFound, ValidationFailed
from weituan.core.stream_events import stream_publish
from weituan.microblog.models import FilterAction, FilterContext, FilterKeyword, FilterStatus, KeywordFilter
from weituan.microblog.queries.filters import (
    filter_get_for_user,
    filter_keyword_get_for_user,
    filter_status_get_for_user,
)
from weituan.microblog.queries.visibility import visible_post_ids

FILTERS_MAX = 100
FILTER_KEYWORDS_MAX = 50
FILTER_STATUSES_MAX = 50
TITLE_MAX = 100
KEYWORD_MAX = 100
# The longest a filter may be set to last: ten years, past which "never" is meant.
EXPIRES_IN_MAX = 10 * 366 * 86400


class _Unchanged:
    pass


UNCHANGED: Any = _Unchanged()


@dataclass(frozen=True)
class KeywordChange:
    """One entry of Mastodon's `keywords_attributes`: a new keyword (no `id`), a change to one, or its
    removal (`destroy`)."""

    id: int | None = None
    keyword: str | None = None
    whole_word: bool | None = None
    destroy: bool = False


def _filters_changed(owner: Any) -> None:
    """Tell the owner's streams, once the change commits, that their filters changed."""
    stream_publish({"t": "filters_changed", "r": owner.pk})


def _text_checked(value: str | None, *, name: str, field: str, most: int, blank: str) -> str:
    """`value` stripped, refused when empty (`blank` says what is missing) or longer than `most`."""
    text = (value or "").strip()
    if not text:
        raise ValidationFailed(blank, code=f"filter_{name}_blank", field=field)
    if len(text) > most:
        raise ValidationFailed(
            f"A filter's {name} is at most {most} characters", code=f"filter_{name}_length", field=field
        )
    return text


def filter_title_checked(title: str | None) -> str:
    return _text_checked(title, name="title", field="title", most=TITLE_MAX, blank="The filter needs a title")


def filter_contexts_checked(contexts: Sequence[str]) -> str:
    """The contexts as stored (comma-joined, in Mastodon's order); at least one, each known."""
    wanted = [str(name).strip() for name in contexts if str(name).strip()]
    if not wanted:
        raise ValidationFailed(
            "Choose where the filter applies: home, notifications, public, thread or account",
            code="filter_context_blank",
            field="context",
        )
    unknown = [name for name in wanted if name not in FilterContext.values]
    if unknown:
        raise ValidationFailed(
            f"Unknown filter context {unknown[0]!r}: use home, notifications, public, thread or account",
            code="filter_context_unknown",
            field="context",
        )
    return ",".join(name for name in FilterContext.values if name in wanted)


def filter_action_checked(action: str | None) -> str:
    value = (action or FilterAction.WARN).strip()
    if value not in FilterAction.values:
        raise ValidationFailed(
            f"Unknown filter action {value!r}: use warn or hide",
            code="filter_action_unknown",
            field="filter_action",
        )
    return value


def filter_expiry(expires_in: int | None) -> datetime | None:
    """When a filter set to last `expires_in` seconds from now ends; None (never) for no number."""
    if expires_in is None:
        return None
    if not 0 < expires_in <= EXPIRES_IN_MAX:
        raise ValidationFailed(
            f"expires_in is a number of seconds, from 1 to {EXPIRES_IN_MAX}",
            code="filter_expires_in",
            field="expires_in",
        )
    return timezone.now() + timedelta(seconds=expires_in)


def filter_keyword_checked(keyword: str | None) -> str:
    return _text_checked(
        keyword, name="keyword", field="keyword", most=KEYWORD_MAX, blank="A keyword cannot be empty"
    )


def _keywords_limit(count: int) -> None:
    if count > FILTER_KEYWORDS_MAX:
        raise ValidationFailed(
            f"A filter holds at most {FILTER_KEYWORDS_MAX} keywords",
            code="filter_keywords_limit",
            field="keyword",
        )


def _owner_locked(owner: Any) -> None:
    """Take the owner's row lock, so counts checked under it hold until the transaction ends."""
    list(get_user_model().objects.select_for_update().filter(pk=owner.pk).values_list("pk", flat=True))


def _filter_locked(owner: Any, filter_id: int) -> KeywordFilter:
    found = KeywordFilter.objects.select_for_update().filter(id=filter_id, owner_id=owner.pk).first()
    if found is None:
        raise NotFound("Record not found")
    return found


def filter_create(
    *,
    owner: Any,
    title: str | None,
    contexts: Sequence[str],
    action: str | None = None,
    expires_in: int | None = None,
    keywords: Sequence[tuple[str | None, bool]] = (),
) -> KeywordFilter:
    """A new filter of `owner` with its keywords ((keyword, whole_word) pairs)."""
    checked_title = filter_title_checked(title)
    context = filter_contexts_checked(contexts)
    checked_action = filter_action_checked(action)
    expires_at = filter_expiry(expires_in)
    words = [(filter_keyword_checked(keyword), bool(whole_word)) for keyword, whole_word in keywords]
    _keywords_limit(len(words))
    with transaction.atomic():
        _owner_locked(owner)
        if KeywordFilter.objects.filter(owner_id=owner.pk).count() >= FILTERS_MAX:
            raise ValidationFailed(
                f"You can have at most {FILTERS_MAX} filters: remove one first", code="filter_limit"
            )
        row = KeywordFilter.objects.create(
            owner_id=owner.pk,
            title=checked_title,
            context=context,
            filter_action=checked_action,
            expires_at=expires_at,
        )
        FilterKeyword.objects.bulk_create(
            FilterKeyword(filter=row, keyword=keyword, whole_word=whole_word) for keyword, whole_word in words
        )
        _filters_changed(owner)
    return filter_get_for_user(owner, row.id)


def filter_update(
    *,
    owner: Any,
    filter_id: int,
    title: str | None = None,
    contexts: Sequence[str] | None = None,
    action: str | None = None,
    expires_in: int | _Unchanged | None = UNCHANGED,
    keywords: Sequence[KeywordChange] = (),
) -> KeywordFilter:
    """Change a filter: what is given changes (`expires_in` None: never ends), the rest stays.
    `keywords` adds, changes and removes keywords (Mastodon's `keywords_attributes`)."""
    changes: dict[str, Any] = {}
    if title is not None:
        changes["title"] = filter_title_checked(title)
    if contexts is not None:
        changes["context"] = filter_contexts_checked(contexts)
    if action is not None:
        changes["filter_action"] = filter_action_checked(action)
    if not isinstance(expires_in, _Unchanged):
        changes["expires_at"] = filter_expiry(expires_in)
    for change in keywords:
        if not change.destroy and (change.id is None or change.keyword is not None):
            filter_keyword_checked(change.keyword)
    with transaction.atomic():
        row = _filter_locked(owner, filter_id)
        existing = {word.id: word for word in FilterKeyword.objects.filter(filter=row)}
        unknown = [change.id for change in keywords if change.id is not None and change.id not in existing]
        if unknown:
            raise NotFound("Record not found")
        destroyed = {change.id for change in keywords if change.destroy and change.id is not None}
        added = [change for change in keywords if change.id is None and not change.destroy]
        _keywords_limit(len(existing) - len(destroyed) + len(added))
        for name, value in changes.items():
            setattr(row, name, value)
        if changes:
            row.save(update_fields=list(changes))
        FilterKeyword.objects.filter(id__in=destroyed).delete()
        for change in keywords:
            if change.id is None or change.destroy:
                continue
            word = existing[change.id]
            if change.keyword is not None:
                word.keyword = filter_keyword_checked(change.keyword)
            if change.whole_word is not None:
                word.whole_word = change.whole_word
            word.save(update_fields=["keyword", "whole_word"])
        FilterKeyword.objects.bulk_create(
            FilterKeyword(
                filter=row,
                keyword=filter_keyword_checked(change.keyword),
                whole_word=change.whole_word is not False,
            )
            for change in added
        )
        _filters_changed(owner)
    return filter_get_for_user(owner, filter_id)


def filter_delete(*, owner: Any, filter_id: int) -> None:
    deleted, _ = KeywordFilter.objects.filter(id=filter_id, owner_id=owner.pk).delete()
    if not deleted:
        raise NotFound("Record not found")
    _filters_changed(owner)


def filter_keyword_add(*, owner: Any, filter_id: int, keyword: str | None, whole_word: bool) -> FilterKeyword:
    text = filter_keyword_checked(keyword)
    with transaction.atomic():
        row = _filter_locked(owner, filter_id)
        _keywords_limit(FilterKeyword.objects.filter(filter=row).count() + 1)
        word = FilterKeyword.objects.create(filter=row, keyword=text, whole_word=whole_word)
        _filters_changed(owner)
    return word


def filter_keyword_update(
    *, owner: Any, keyword_id: int, keyword: str | None = None, whole_word: bool | None = None
) -> FilterKeyword:
    word = filter_keyword_get_for_user(owner, keyword_id)
    if keyword is not None:
        word.keyword = filter_keyword_checked(keyword)
    if whole_word is not None:
        word.whole_word = whole_word
    word.save(update_fields=["keyword", "whole_word"])
    _filters_changed(owner)
    return word


def filter_keyword_delete(*, owner: Any, keyword_id: int) -> None:
    deleted, _ = FilterKeyword.objects.filter(id=keyword_id, filter__owner_id=owner.pk).delete()
    if not deleted:
        raise NotFound("Record not found")
    _filters_changed(owner)


def filter_status_add(*, owner: Any, filter_id: int, post_id: int) -> FilterStatus:
    """Filter one post the owner can see (and its plain reposts)."""
    if not visible_post_ids(owner, [post_id]):
        raise NotFound("Record not found")
    with transaction.atomic():
        row = _filter_locked(owner, filter_id)
        posts = FilterStatus.objects.filter(filter=row)
        if posts.filter(post_id=post_id).exists():
            raise ValidationFailed("The filter already holds this status", code="filter_status_taken")
        if posts.count() >= FILTER_STATUSES_MAX:
            raise ValidationFailed(
                f"A filter holds at most {FILTER_STATUSES_MAX} statuses", code="filter_statuses_limit"
            )
        made = FilterStatus.objects.create(filter=row, post_id=post_id)
        _filters_changed(owner)
    return made


def filter_status_delete(*, owner: Any, filter_status_id: int) -> None:
    filter_status_get_for_user(owner, filter_status_id).delete()
    _filters_changed(owner)


def filter_v1_create(
    *,
    owner: Any,
    phrase: str | None,
    contexts: Sequence[str],
    hide: bool,
    whole_word: bool,
    expires_in: int | None,
) -> FilterKeyword:
    """Mastodon's v1 filter: one keyword, in a filter titled by it."""
    row = filter_create(
        owner=owner,
        title=filter_keyword_checked(phrase),
        contexts=contexts,
        action=FilterAction.HIDE if hide else FilterAction.WARN,
        expires_in=expires_in,
        keywords=[(phrase, whole_word)],
    )
    return filter_keyword_get_for_user(owner, row.keywords.all()[0].id)


def filter_v1_update(
    *,
    owner: Any,
    keyword_id: int,
    phrase: str | None,
    contexts: Sequence[str] | None,
    hide: bool | None,
    whole_word: bool | None,
    expires_in: int | _Unchanged | None = UNCHANGED,
) -> FilterKeyword:
    """Change a v1 filter (a keyword and its filter). A filter holding more keywords than this one is
    shared with them, so its contexts, action and end cannot be changed through it."""
    word = filter_keyword_get_for_user(owner, keyword_id)
    row = word.filter
    changes_filter = (
        (contexts is not None and filter_contexts_checked(contexts) != row.context)
        or (hide is not None and hide != (row.filter_action == FilterAction.HIDE))
        or not isinstance(expires_in, _Unchanged)
    )
    with transaction.atomic():
        if changes_filter and FilterKeyword.objects.filter(filter_id=word.filter_id).count() > 1:
            raise ValidationFailed(
                "This filter holds several keywords: change it through /api/v2/filters",
                code="filter_v1_multiple_keywords",
            )
        filter_update(
            owner=owner,
            filter_id=word.filter_id,
            contexts=contexts,
            action=None if hide is None else (FilterAction.HIDE if hide else FilterAction.WARN),
            expires_in=expires_in,
            keywords=[KeywordChange(id=word.id, keyword=phrase, whole_word=whole_word)],
        )
    return filter_keyword_get_for_user(owner, keyword_id)


def filter_v1_delete(*, owner: Any, keyword_id: int) -> None:
    """Remove a v1 filter: its keyword, and the filter too once nothing is left in it."""
    word = filter_keyword_get_for_user(owner, keyword_id)
    with transaction.atomic():
        word.delete()
        row = KeywordFilter.objects.filter(id=word.filter_id)
        if not FilterKeyword.objects.filter(filter_id=word.filter_id).exists():
            row.filter(statuses__isnull=True).delete()
        _filters_changed(owner)
