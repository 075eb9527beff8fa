"""Mastodon's Filter, FilterKeyword, FilterStatus and v1 Filter entities, and a reader's filters applied
to the statuses of a read: `filtered` on each status a filter of the read's context matches (and on the
statuses it reblogs or quotes), and the statuses a hiding filter matches left out of a list."""

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from weituan.mastodon.serializers_accounts import mastodon_datetime
from weituan.microblog.models import FilterAction, FilterContext, FilterKeyword, FilterStatus, KeywordFilter
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


def _quoted(status: dict[str, Any]) -> dict[str, Any] | None:
    """The status a quote shows in full (`quote.quoted_status`), if it shows one."""
    quote = status.get("quote")
    return quote.get("quoted_status") if quote else None


def _statuses_shown(status: dict[str, Any]) -> list[dict[str, Any]]:
    """The status, the one it reblogs and the ones they quote: each a reader may have filtered."""
    reblog = status.get("reblog")
    shown = [status, reblog, _quoted(status), _quoted(reblog) if reblog else None]
    return [nested for nested in shown if nested is not None]


def _quote_filtered(status: dict[str, Any], matches: dict[int, list[FilterMatch]]) -> None:
    """Set `filtered` on the status a quote shows, in a copy of the quote (a rendered status may be
    kept for many readers)."""
    quoted = _quoted(status)
    if quoted is not None:
        found = filter_results_json(matches.get(int(quoted["id"]), []))
        status["quote"] = {**status["quote"], "quoted_status": {**quoted, "filtered": found}}


def statuses_filtered_for(viewer: Any, context: str, statuses: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`statuses_filtered` by the filters of `viewer` (a user, or None for nobody) in `context`."""
    return statuses_filtered(statuses, reader_filters(viewer.pk if viewer is not None else None, context))


def statuses_filtered(
    statuses: list[dict[str, Any]], filters: list[ReaderFilter], *, leave_out: bool = True
) -> list[dict[str, Any]]:
    """`statuses` with `filtered` set where a filter matches (on a reblog, on the status it nests too;
    on a quote, on the status it shows), those a hiding filter matches left out (a quote is not left
    out for what it quotes; none is without `leave_out`). Nothing is read without filters."""
    return items_filtered(statuses, filters, lambda status: status, leave_out=leave_out)


def status_filtered_for(viewer: Any, context: str, status: dict[str, Any]) -> dict[str, Any]:
    """One status asked for by itself, with `filtered` set as `statuses_filtered` sets it by the
    filters of `viewer` in `context`; a hiding filter's match is told, not acted on: the reader's
    client hides it, as Mastodon's do."""
    filters = reader_filters(viewer.pk if viewer is not None else None, context)
    return statuses_filtered([status], filters, leave_out=False)[0]


def items_filtered[T](
    items: list[T],
    filters: list[ReaderFilter],
    status_of: Callable[[T], dict[str, Any] | None],
    *,
    leave_out: bool = True,
) -> list[T]:
    """`statuses_filtered` for things that carry a status (`status_of`), such as notifications: one
    whose status a hiding filter matches is left out (kept, with the match told, without
    `leave_out`)."""
    if not filters:
        return items
    statuses = [status for status in map(status_of, items) if status is not None]
    matches = posts_filter_matches(
        filters, (int(nested["id"]) for status in statuses for nested in _statuses_shown(status))
    )
    kept = []
    for item in items:
        status = status_of(item)
        found = matches.get(int(status["id"]), []) if status is not None else []
        if status is not None and status.get("reblog"):
            nested = matches.get(int(status["reblog"]["id"]), [])
            status["reblog"] = {**status["reblog"], "filtered": filter_results_json(nested)}
            _quote_filtered(status["reblog"], matches)
            found = found or nested
        if leave_out and any(match.hides for match in found):
            continue
        if status is not None:
            status["filtered"] = filter_results_json(found)
            _quote_filtered(status, matches)
        kept.append(item)
    return kept


def notifications_filtered(
    user: Any, notifications: list[dict[str, Any]], *, leave_out: bool = True
) -> list[dict[str, Any]]:
    """Notification entities with `filtered` on their statuses by the user's filters of notifications;
    those whose status a hiding filter matches left out (unless not `leave_out`)."""
    filters = reader_filters(user.pk, FilterContext.NOTIFICATIONS)
    return items_filtered(notifications, filters, _status_of, leave_out=leave_out)


def _status_of(notification: dict[str, Any]) -> dict[str, Any] | None:
    return notification["status"]
