"""A follow list's timeline: its members' posts and reposts, as the home timeline shows them.

Nothing is stored for it: each page walks the members' (author, id) index in the posts table, a short
walk per member stopped at the page's size (`authors_posts`, the walk the home read uses for the
high-follower authors), so a page costs the same whatever the size of the posts table.
"""

from collections.abc import Sequence

from django.db import connection
from django.db.models import Exists, F, OuterRef

from weituan.microblog.models import Follow, FollowListMember
from weituan.microblog.timelines.home import (
    MORE_READS,
    READ_SLACK,
    authors_posts,
    authors_reaching,
    bounds_of,
    merge_entries,
)
from weituan.microblog.timelines.store import Bounds, Entry

# SQLite reads every member's walk as one part of a compound statement, which has a limit on its parts.
SQLITE_MEMBERS_PER_STATEMENT = 200


class ListMembers:
    """Who a list's timeline reads: the members, those whose plain reposts the owner's follow hides,
    and each member's newest post id where known."""

    def __init__(self, rows: Sequence[tuple[int, bool, int | None]]) -> None:
        self.ids = [account_id for account_id, _, _ in rows]
        self.reblogs_hidden = frozenset(account_id for account_id, quiet, _ in rows if quiet)
        self.newest = [(account_id, int(newest)) for account_id, _, newest in rows if newest is not None]


def list_members_for_reading(owner_id: int, list_id: int) -> ListMembers:
    """The list's members as its timeline reads them, in one query."""
    quiet = Follow.objects.filter(
        follower_id=owner_id, followee_id=OuterRef("account_id"), show_reblogs=False
    )
    rows = (
        FollowListMember.objects.filter(follow_list_id=list_id)
        .annotate(quiet=Exists(quiet), newest=F("account__microblog_stats__newest_post_id"))
        .order_by("account_id")
        .values_list("account_id", "quiet", "newest")
    )
    return ListMembers(list(rows))


def _walk(authors: Sequence[int], bounds: Bounds, count: int, reblogs_hidden: frozenset[int]) -> list[Entry]:
    if connection.vendor != "sqlite" or len(authors) <= SQLITE_MEMBERS_PER_STATEMENT:
        return authors_posts(authors, bounds, count, reblogs_hidden=reblogs_hidden)
    found: list[Entry] = []
    for start in range(0, len(authors), SQLITE_MEMBERS_PER_STATEMENT):
        chunk = authors[start : start + SQLITE_MEMBERS_PER_STATEMENT]
        found += authors_posts(chunk, bounds, count, reblogs_hidden=reblogs_hidden)
    found.sort(key=lambda entry: entry.post_id, reverse=not bounds.ascending)
    return found[:count]


def list_timeline_ids(
    owner_id: int,
    list_id: int,
    *,
    hidden: frozenset[int],
    max_id: int | None = None,
    since_id: int | None = None,
    min_id: int | None = None,
    limit: int = 20,
) -> list[int]:
    """Post ids of one page of the list's timeline, newest first. Call with a list `owner_id` owns.

    As the home timeline: the members' originals and reposts (their plain reposts only where the
    owner's follow shows them), never comments, nothing by or forwarded from an account in `hidden`
    (blocks either way, mutes). A page that loses many posts to `hidden` reads on past them, so it comes
    back short only at the end of the timeline.
    """
    members = list_members_for_reading(owner_id, list_id)
    authors = [account_id for account_id in members.ids if account_id not in hidden]
    bounds = bounds_of(max_id, since_id, min_id)
    count = limit + READ_SLACK
    ids: list[int] = []
    for _ in range(1 + MORE_READS):
        walked = authors_reaching(authors, members.newest, bounds)
        entries = _walk(walked, bounds, count, members.reblogs_hidden)
        page = merge_entries([entries], hidden, bounds, limit - len(ids))
        ids = page + ids if bounds.ascending else ids + page
        if len(entries) < count or len(ids) >= limit:
            break
        # Every post up to the last one read was seen: read on from it, further each time.
        edge = entries[-1].post_id
        if bounds.ascending:
            bounds = Bounds(upper=bounds.upper, lower=edge, ascending=True)
        else:
            bounds = Bounds(upper=edge, lower=bounds.lower, ascending=False)
        count *= 2
    return ids
