"""Mastodon's Filter, FilterKeyword, FilterStatus and v1 Filter entities, and a reader's filters applied
to the statuses of a read: `filtered` on each status a filter of the read's context matches, and the
statuses a hiding filter matches left out."""

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from weituan.mastodon.serializers_accounts import mastodon_datetime
from weituan.microblog.models import FilterAction, FilterKeyword, FilterStatus, KeywordFilter
from weituan.microblog.queries.filters import FilterMatch, ReaderFilter, posts_filter_matches, reader_filters

T = TypeVar("T")


def filter_keyword_json(word: FilterKeyword) -> dict[str, Any]:
    return {"id": str(word.id), "keyword": word.keyword, "whole_word": word.whole_word}


def filter_status_json(row: FilterStatus) -> dict[str, Any]:
    return {"id": str(row.id), "status_id": str(row.post_id)}


def filter_json(row: KeywordFilter, *, rules: bool = True) -> dict[str, Any]:
    """The Filter entity; with `rules` its keywords and statuses too (the filters API's answers, not a
    status's `filtered`, as Mastodon does)."""
    data: dict[str, Any] = {
        "id": str(row.id),
        "title": row.title,
        "context": row.contexts,
        "expires_at": mastodon_datetime(row.expires_at),
        "filter_action": row.filter_action,
    }
    if rules:
        data["keywords"] = [filter_keyword_json(word) for word in row.keywords.all()]
        data["statuses"] = [filter_status_json(status) for status in row.statuses.all()]
    return data


def filter_v1_json(word: FilterKeyword) -> dict[str, Any]:
    """Mastodon's v1 Filter: one keyword with its filter's contexts, end and action."""
    row = word.filter
    return {
        "id": str(word.id),
        "phrase": word.keyword,
        "context": row.contexts,
        "whole_word": word.whole_word,
        "expires_at": mastodon_datetime(row.expires_at),
        "irreversible": row.filter_action == FilterAction.HIDE,
    }


def filter_results_json(matches: Sequence[FilterMatch]) -> list[dict[str, Any]]:
    """A status's `filtered`: Mastodon's FilterResult of each filter that matched it."""
    return [
        {
            "filter": filter_json(match.filter, rules=False),
            "keyword_matches": list(match.keywords) or None,
            "status_matches": [str(post_id) for post_id in match.post_ids] or None,
        }
        for match in matches
    ]


def _status_ids(status: dict[str, Any]) -> list[int]:
    ids = [int(status["id"])]
    if status.get("reblog"):
        ids.append(int(status["reblog"]["id"]))
    return ids


def statuses_filtered_for(viewer: Any, context: str, statuses: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`statuses_filtered` by the filters of `viewer` (a user, or None for nobody) in `context`."""
    return statuses_filtered(statuses, reader_filters(viewer.pk if viewer is not None else None, context))


def statuses_filtered(statuses: list[dict[str, Any]], filters: list[ReaderFilter]) -> list[dict[str, Any]]:
    """`statuses` with `filtered` set where a filter matches (on a reblog, on the status it nests too),
    those a hiding filter matches left out. Nothing is read without filters."""
    return items_filtered(statuses, filters, lambda status: status)


def items_filtered[T](
    items: list[T], filters: list[ReaderFilter], status_of: Callable[[T], dict[str, Any] | None]
) -> list[T]:
    """`statuses_filtered` for things that carry a status (`status_of`), such as notifications: one
    whose status a hiding filter matches is left out."""
    if not filters:
        return items
    statuses = [status for status in map(status_of, items) if status is not None]
    matches = posts_filter_matches(
        filters, (post_id for status in statuses for post_id in _status_ids(status))
    )
    kept = []
    for item in items:
        status = status_of(item)
        found = matches.get(int(status["id"]), []) if status is not None else []
        if status is not None and status.get("reblog"):
            nested = matches.get(int(status["reblog"]["id"]), [])
            status["reblog"] = {**status["reblog"], "filtered": filter_results_json(nested)}
            found = found or nested
        if any(match.hides for match in found):
            continue
        if status is not None:
            status["filtered"] = filter_results_json(found)
        kept.append(item)
    return kept
