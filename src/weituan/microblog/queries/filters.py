"""A reader's keyword filters (屏蔽关键词): their own list, one of them, and which posts they match."""

import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any

from django.db.models import Prefetch, Q, QuerySet
from django.utils import timezone

from weituan.core.errors import NotFound
from weituan.microblog.keyword_match import keyword_pattern, keywords_found, post_words
from weituan.microblog.models import FilterAction, FilterKeyword, FilterStatus, KeywordFilter, Post


def filters_of(owner_id: int) -> "QuerySet[KeywordFilter]":
    """The owner's filters, oldest first, with their keywords and posts (expired ones too: the owner
    sees and may renew them)."""
    return (
        KeywordFilter.objects.filter(owner_id=owner_id)
        .prefetch_related(
            Prefetch("keywords", queryset=FilterKeyword.objects.order_by("id")),
            Prefetch("statuses", queryset=FilterStatus.objects.order_by("id")),
        )
        .order_by("id")
    )


def filter_get_for_user(user: Any, filter_id: int) -> KeywordFilter:
    """One of the user's filters; anyone else's, or one unknown, is a 404."""
    found = filters_of(user.pk).filter(id=filter_id).first()
    if found is None:
        raise NotFound("Record not found")
    return found


def filter_keyword_get_for_user(user: Any, keyword_id: int) -> FilterKeyword:
    found = (
        FilterKeyword.objects.filter(id=keyword_id, filter__owner_id=user.pk).select_related("filter").first()
    )
    if found is None:
        raise NotFound("Record not found")
    return found


def filter_status_get_for_user(user: Any, filter_status_id: int) -> FilterStatus:
    found = (
        FilterStatus.objects.filter(id=filter_status_id, filter__owner_id=user.pk)
        .select_related("filter")
        .first()
    )
    if found is None:
        raise NotFound("Record not found")
    return found


def filter_keywords_of(user: Any) -> "QuerySet[FilterKeyword]":
    """Every keyword of the user's filters, as Mastodon's v1 API lists them (one filter each)."""
    return FilterKeyword.objects.filter(filter__owner_id=user.pk).select_related("filter").order_by("id")


@dataclass(frozen=True)
class ReaderFilter:
    """An active filter of a reader, ready to match: its keywords' patterns and its posts."""

    filter: KeywordFilter
    patterns: tuple[tuple[str, "re.Pattern[str]"], ...]
    post_ids: frozenset[int]

    @property
    def hides(self) -> bool:
        return self.filter.filter_action == FilterAction.HIDE


@dataclass(frozen=True)
class FilterMatch:
    """A filter that matched a post: the keywords found, the filtered posts it is or reposts."""

    filter: KeywordFilter
    keywords: tuple[str, ...]
    post_ids: tuple[int, ...]

    @property
    def hides(self) -> bool:
        return self.filter.filter_action == FilterAction.HIDE


def reader_filters(reader_id: int | None, context: str) -> list[ReaderFilter]:
    """The reader's filters that apply in `context` now (not expired). One query for a reader with
    none, three otherwise."""
    if reader_id is None:
        return []
    now = timezone.now()
    active = (
        filters_of(reader_id)
        .filter(context__contains=context)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
    )
    found = []
    for row in active:
        if context not in row.contexts:
            continue
        patterns = tuple(
            (word.keyword, keyword_pattern(word.keyword, whole_word=word.whole_word))
            for word in row.keywords.all()
        )
        found.append(ReaderFilter(row, patterns, frozenset(status.post_id for status in row.statuses.all())))
    return found


def words_matches(
    filters: Iterable[ReaderFilter], words: tuple[str, ...], post_ids: Collection[int]
) -> list[FilterMatch]:
    """The filters that match a post whose words are `words` and which is, or plainly reposts, the
    posts `post_ids`."""
    matches = []
    for active in filters:
        keywords = keywords_found(active.patterns, words)
        statuses = tuple(sorted(active.post_ids.intersection(post_ids)))
        if keywords or statuses:
            matches.append(FilterMatch(active.filter, tuple(keywords), statuses))
    return matches


def posts_filter_matches(
    filters: list[ReaderFilter], post_ids: Iterable[int]
) -> dict[int, list[FilterMatch]]:
    """The filters matching each of `post_ids` (those matched by none left out). No query without
    filters; else one for the posts' words."""
    if not filters:
        return {}
    rows = Post.objects.filter(id__in=set(post_ids)).values_list(
        "id", "kind", "text", "comment", "root_id", "parent_id", "root__text"
    )
    found = {}
    for post_id, kind, text, comment, root_id, parent_id, root_text in rows:
        words = post_words(kind, text, comment, root_text)
        plain = kind == "repost" and not comment
        ids = {post_id, *((root_id, parent_id) if plain else ())} - {None}
        matches = words_matches(filters, words, ids)
        if matches:
            found[post_id] = matches
    return found


def view_filter_matches(filters: list[ReaderFilter], view: Any) -> list[FilterMatch]:
    """The filters matching a hydrated post (a `PostView`), read from what it already holds."""
    post = view.post
    origin = view.root.post if view.root is not None else None
    words = post_words(post.kind, post.text, post.comment, origin.text if origin is not None else None)
    plain = post.kind == "repost" and not post.comment
    ids = {post.id, *((post.root_id, post.parent_id) if plain else ())} - {None}
    return words_matches(filters, words, ids)
