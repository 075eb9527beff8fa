"""Where home timelines are kept: database rows by default, Redis sorted sets when REDIS_URL is set.

Both backends hold, per user, the newest post ids with the post's author and (for a repost) the root's
author, so reads can drop blocked and muted accounts before anything is hydrated.

Redis layout: one sorted set per user, every score 0, ordered by member. A member is
`<post id, 19 digits>:<author id>:<origin author id>`, so lexicographic order is id order (scores are
doubles and cannot hold a 64-bit id exactly). The member `0` is a sentinel marking a built timeline: a
missing key means "rebuild on read", an empty built timeline still exists.
"""

import json
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple, Protocol, cast

from django.conf import settings
from django.db import connection, transaction

from weituan.core.redis import get_redis, redis_enabled, rkey, scripts_run
from weituan.core.rows import db_vendor, fetch_rows
from weituan.core.sqlite_writer import sqlite_writer
from weituan.microblog.timelines.models import TimelineEntry


class Entry(NamedTuple):
    post_id: int
    author_id: int
    origin_author_id: int


class Bounds(NamedTuple):
    """Exclusive id bounds of a read; `ascending` reads just above `lower` (Mastodon's min_id)."""

    upper: int | None = None
    lower: int | None = None
    ascending: bool = False


class TimelineStore(Protocol):
    def deliver(self, user_ids: Sequence[int], entry: Entry) -> int:
        """Add one entry to each built timeline among `user_ids`; returns how many got it."""

    def deliver_many(self, deliveries: Sequence[tuple[Sequence[int], Entry]]) -> list[int]:
        """`deliver` of each (user ids, entry) in turn, in as few round trips as the store allows;
        returns how many got each entry."""

    def add(self, user_id: int, entries: Sequence[Entry]) -> None:
        """Add entries to one user's timeline if it is built (backfill after a follow)."""

    def rebuild(self, user_id: int, entries: Sequence[Entry]) -> None:
        """Merge `entries` (the newest posts of the user's follows) into the timeline, cut it to the cap,
        and mark it built. Merging rather than replacing keeps a post delivered while the rebuild ran."""

    def read(self, user_id: int, bounds: Bounds, count: int) -> list[Entry] | None:
        """Up to `count` entries newest first, or None when the timeline is not built."""

    def remove_post(self, post_id: int, user_ids: Iterable[int]) -> None: ...

    def remove_entries(self, user_id: int, entries: Sequence[Entry]) -> None:
        """Drop `entries` (as read from it) from one user's timeline."""

    def remove_authors(self, user_id: int, author_ids: set[int], *, with_reposts: bool) -> None:
        """Drop entries written by any of `author_ids` from one user's timeline (and, `with_reposts`,
        others' reposts of their posts)."""

    def trim(self, user_ids: Sequence[int]) -> None:
        """Cut each timeline to the newest TIMELINE_CAP entries."""


# --- database rows -------------------------------------------------------------------------------


# The read's statement per store and bounds' shape (which bounds are set, which direction).
_READS: dict[tuple[str, bool, bool, bool], str] = {}


class DatabaseTimelineStore:
    """TimelineEntry rows; a timeline counts as built when the user's TimelineState says so.

    Cutting a timeline to the cap costs an index walk of `cap` rows, so fan-out trims each follower
    only on about one delivery in TRIM_EVERY; a timeline may briefly hold a few more than the cap.
    """

    batch_size = 2000

    def trim_every(self) -> int:
        return max(1, settings.TIMELINE_CAP // 16)

    def deliver(self, user_ids: Sequence[int], entry: Entry) -> int:
        # One statement per batch, the user ids passed as a single array (PostgreSQL) or JSON list
        # (SQLite): building a model instance per row would cost more than the insert itself.
        table = connection.ops.quote_name(TimelineEntry._meta.db_table)
        postgres = connection.vendor == "postgresql"
        source = "unnest(%s::bigint[]) AS ids(value)" if postgres else "json_each(%s)"
        sql = " ".join(
            (
                "INSERT INTO",
                table,
                "(user_id, post_id, author_id, origin_author_id) SELECT value, %s, %s, %s FROM",
                source,
                "WHERE true ON CONFLICT DO NOTHING",
            )
        )
        with connection.cursor() as cursor:
            for start in range(0, len(user_ids), self.batch_size):
                chunk = user_ids[start : start + self.batch_size]
                ids: list[int] | str = list(chunk) if postgres else json.dumps(list(chunk))
                cursor.execute(sql, [entry.post_id, entry.author_id, entry.origin_author_id, ids])
        every = self.trim_every()
        due = [user_id for user_id in user_ids if (user_id * 2654435761 + entry.post_id) % every == 0]
        if due:
            self.trim(due)
        return len(user_ids)

    # Entries written per transaction by `deliver_many`. Entries of a burst fall on different pages of
    # the table (one per follower), each a page in the log at the commit: on SQLite 250 of them hold
    # the write lock for about 5 ms, what a post then waits at most for the fan-out's turn.
    rows_per_commit = 250

    def deliver_many(self, deliveries: Sequence[tuple[Sequence[int], Entry]]) -> list[int]:
        # The rows of all the posts together, rows_per_commit of them by one statement in a transaction
        # of its own: a burst's many small deliveries (often a post's author alone) cost one statement
        # and one commit rather than one of each per post, and a transaction stays short whatever the
        # posts' followings, so it holds up other writers little.
        rows = [(user_id, entry) for user_ids, entry in deliveries for user_id in user_ids]
        every = self.trim_every()
        for start in range(0, len(rows), self.rows_per_commit):
            chunk = rows[start : start + self.rows_per_commit]
            due = [user_id for user_id, entry in chunk if (user_id * 2654435761 + entry.post_id) % every == 0]
            # On SQLite queued for the write lock, as posts are.
            with sqlite_writer(), transaction.atomic():
                self._insert_rows(chunk)
                if due:
                    self.trim(due)
        return [len(user_ids) for user_ids, _ in deliveries]

    def _insert_rows(self, rows: Sequence[tuple[int, Entry]]) -> None:
        """INSERT the entries (holder, entry) in one statement, leaving any already there: the columns
        passed as arrays (PostgreSQL) or the rows as one JSON list (SQLite)."""
        table = connection.ops.quote_name(TimelineEntry._meta.db_table)
        columns = "INSERT INTO " + table + " (user_id, post_id, author_id, origin_author_id) SELECT "
        params: list[Any]
        if connection.vendor == "postgresql":
            sql = columns + "* FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[], %s::bigint[])"
            params = [
                [user_id for user_id, _ in rows],
                [entry.post_id for _, entry in rows],
                [entry.author_id for _, entry in rows],
                [entry.origin_author_id for _, entry in rows],
            ]
        else:
            sql = columns + (
                "json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]'),"
                " json_extract(value, '$[3]') FROM json_each(%s)"
            )
            params = [json.dumps([(user_id, *entry) for user_id, entry in rows])]
        with connection.cursor() as cursor:
            cursor.execute(sql + " WHERE true ON CONFLICT DO NOTHING", params)

    def add(self, user_id: int, entries: Sequence[Entry]) -> None:
        if not entries:
            return
        TimelineEntry.objects.bulk_create(
            [
                TimelineEntry(user_id=user_id, post_id=p, author_id=a, origin_author_id=o)
                for p, a, o in entries
            ],
            batch_size=self.batch_size,
            ignore_conflicts=True,
        )
        self.trim([user_id])

    def rebuild(self, user_id: int, entries: Sequence[Entry]) -> None:
        TimelineEntry.objects.bulk_create(
            [
                TimelineEntry(user_id=user_id, post_id=p, author_id=a, origin_author_id=o)
                for p, a, o in entries[: settings.TIMELINE_CAP]
            ],
            batch_size=self.batch_size,
            ignore_conflicts=True,
        )
        self.trim([user_id])

    def read(self, user_id: int, bounds: Bounds, count: int) -> list[Entry] | None:
        # Written as SQL: this runs on every home read, and compiling the queryset cost more than the query.
        shape = (db_vendor(), bounds.upper is not None, bounds.lower is not None, bounds.ascending)
        sql = _READS.get(shape)
        if sql is None:
            table = connection.ops.quote_name(TimelineEntry._meta.db_table)
            parts = [f"SELECT post_id, author_id, origin_author_id FROM {table} WHERE user_id = %s"]  # noqa: S608
            if bounds.upper is not None:
                parts.append("AND post_id < %s")
            if bounds.lower is not None:
                parts.append("AND post_id > %s")
            parts.append(
                "ORDER BY post_id ASC LIMIT %s" if bounds.ascending else "ORDER BY post_id DESC LIMIT %s"
            )
            sql = _READS[shape] = " ".join(parts)
        params: list[int] = [user_id]
        if bounds.upper is not None:
            params.append(bounds.upper)
        if bounds.lower is not None:
            params.append(bounds.lower)
        params.append(count)
        found = [Entry(*row) for row in fetch_rows(sql, params)]
        if bounds.ascending:
            found.reverse()
        return found

    def remove_post(self, post_id: int, user_ids: Iterable[int]) -> None:
        # By primary key, holder by holder; a timeline missed here still drops the deleted post at read.
        ids = list(user_ids)
        for start in range(0, len(ids), self.batch_size):
            TimelineEntry.objects.filter(
                user_id__in=ids[start : start + self.batch_size], post_id=post_id
            ).delete()

    def remove_entries(self, user_id: int, entries: Sequence[Entry]) -> None:
        if entries:
            TimelineEntry.objects.filter(user_id=user_id, post_id__in=[e.post_id for e in entries]).delete()

    def remove_authors(self, user_id: int, author_ids: set[int], *, with_reposts: bool) -> None:
        if not author_ids:
            return
        TimelineEntry.objects.filter(user_id=user_id, author_id__in=author_ids).delete()
        if with_reposts:
            TimelineEntry.objects.filter(user_id=user_id, origin_author_id__in=author_ids).delete()

    def trim(self, user_ids: Sequence[int]) -> None:
        table = connection.ops.quote_name(TimelineEntry._meta.db_table)
        # The only interpolation is the model's own quoted table name.
        sql = " ".join(
            (
                "DELETE FROM",
                table,
                "WHERE user_id = %s AND post_id < (SELECT post_id FROM",
                table,
                "WHERE user_id = %s ORDER BY post_id DESC LIMIT 1 OFFSET %s)",
            )
        )
        offset = settings.TIMELINE_CAP - 1
        with connection.cursor() as cursor:
            cursor.executemany(sql, [(user_id, user_id, offset) for user_id in user_ids])


# --- Redis sorted sets ---------------------------------------------------------------------------

_SENTINEL = "0"

# ARGV: key prefix, member, cap, user ids joined by commas. Only built timelines (key present) receive
# the entry. The keys are made here from the ids rather than passed one by one: encoding thousands of
# keys per call was most of the fan-out's cost on the Python side. (Keys not declared in KEYS rule out
# Redis Cluster; timelines live on one Redis.)
_DELIVER_LUA = """
local prefix = ARGV[1]
local member = ARGV[2]
local cap = tonumber(ARGV[3])
local delivered = 0
for id in string.gmatch(ARGV[4], "%d+") do
  local key = prefix .. id
  if redis.call('EXISTS', key) == 1 then
    redis.call('ZADD', key, 0, member)
    local size = redis.call('ZCARD', key)
    if size > cap + 1 then
      redis.call('ZREMRANGEBYRANK', key, 1, size - cap - 1)
    end
    delivered = delivered + 1
  end
end
return delivered
"""

# KEYS: timelines; ARGV: min, max of a lexicographic range to remove from each.
_REMOVE_RANGE_LUA = """
for _, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYLEX', key, ARGV[1], ARGV[2])
end
return 0
"""


# KEYS: a timeline; ARGV: high, low (a ZREVRANGEBYLEX range), count, 1 to read upwards from low.
# Nil for a timeline that is not built, else its members in the range joined by commas.
_READ_LUA = """
if redis.call('EXISTS', KEYS[1]) == 0 then
  return false
end
local members
if ARGV[4] == '1' then
  members = redis.call('ZRANGEBYLEX', KEYS[1], ARGV[2], ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
else
  members = redis.call('ZREVRANGEBYLEX', KEYS[1], ARGV[1], ARGV[2], 'LIMIT', 0, tonumber(ARGV[3]))
end
return table.concat(members, ',')
"""


def member_of(entry: Entry) -> str:
    return f"{entry.post_id:019d}:{entry.author_id}:{entry.origin_author_id}"


def entry_of_member(member: bytes | str) -> Entry:
    text = member.decode() if isinstance(member, bytes) else member
    post_id, author_id, origin_author_id = text.split(":")
    return Entry(int(post_id), int(author_id), int(origin_author_id))


def entries_of_joined(text: str) -> list[Entry]:
    """The entries of members joined by commas (as `_READ_LUA` returns them), in order."""
    if not text:
        return []
    numbers = iter(map(int, text.replace(",", ":").split(":")))
    return list(map(Entry, numbers, numbers, numbers))


def lex_range(bounds: Bounds) -> tuple[str, str]:
    """The (high, low) ends of a lex range over the members inside `bounds`, both excluded (the sentinel
    too), for ZREVRANGEBYLEX high low or ZRANGEBYLEX low high."""
    high = "(" + f"{bounds.upper:019d}" if bounds.upper is not None else "+"
    # ';' sorts just after ':', so "(<id>;" excludes every member of post <id> itself.
    low = "(" + f"{bounds.lower:019d};" if bounds.lower is not None else "(" + _SENTINEL
    return high, low


def home_key(user_id: int) -> str:
    return rkey("tl", "home", user_id)


def home_key_prefix() -> str:
    """What `home_key` puts before the user id."""
    return rkey("tl", "home", "")


class RedisTimelineStore:
    """Sorted sets trimmed exactly to the cap on every delivery, in Lua so a batch is one round trip."""

    batch_size = 1000
    deliver_batch_size = 5000

    def __init__(self) -> None:
        client = get_redis()
        self.client = client
        self._deliver = client.register_script(_DELIVER_LUA)
        self._remove_range = client.register_script(_REMOVE_RANGE_LUA)
        self._read = client.register_script(_READ_LUA)

    def deliver(self, user_ids: Sequence[int], entry: Entry) -> int:
        member = member_of(entry)
        cap = settings.TIMELINE_CAP
        prefix = home_key_prefix()
        total = 0
        # A batch is one script run; it blocks Redis for its length, so batches stay a few ms long.
        for start in range(0, len(user_ids), self.deliver_batch_size):
            ids = ",".join(map(str, user_ids[start : start + self.deliver_batch_size]))
            total += int(self._deliver(keys=[], args=[prefix, member, cap, ids]))
        return total

    def deliver_many(self, deliveries: Sequence[tuple[Sequence[int], Entry]]) -> list[int]:
        # Every script run of every entry in one round trip, for a whole burst of posts instead of one
        # per post.
        cap = settings.TIMELINE_CAP
        prefix = home_key_prefix()
        calls: list[tuple[Any, list[str], list[Any]]] = []
        runs: list[int] = []
        for user_ids, entry in deliveries:
            member = member_of(entry)
            starts = range(0, len(user_ids), self.deliver_batch_size)
            for start in starts:
                ids = ",".join(map(str, user_ids[start : start + self.deliver_batch_size]))
                calls.append((self._deliver, [], [prefix, member, cap, ids]))
            runs.append(len(starts))
        replies = iter(scripts_run(calls))
        return [sum(int(next(replies)) for _ in range(count)) for count in runs]

    def add(self, user_id: int, entries: Sequence[Entry]) -> None:
        if not entries:
            return
        key = home_key(user_id)
        if not self.client.exists(key):
            return
        cap = settings.TIMELINE_CAP
        pipe = self.client.pipeline(transaction=True)
        pipe.zadd(key, {member_of(entry): 0 for entry in entries})
        pipe.zremrangebyrank(key, 1, -(cap + 1))
        pipe.execute()

    def rebuild(self, user_id: int, entries: Sequence[Entry]) -> None:
        key = home_key(user_id)
        cap = settings.TIMELINE_CAP
        mapping = {member_of(entry): 0 for entry in entries[:cap]}
        mapping[_SENTINEL] = 0
        pipe = self.client.pipeline(transaction=True)
        pipe.zadd(key, mapping)
        pipe.zremrangebyrank(key, 1, -(cap + 1))
        pipe.execute()

    def read(self, user_id: int, bounds: Bounds, count: int) -> list[Entry] | None:
        return self.read_reply(scripts_run([self.read_call(user_id, bounds, count)])[0], bounds)

    def read_call(self, user_id: int, bounds: Bounds, count: int) -> tuple[Any, list[str], list[Any]]:
        """`read` as the (script, keys, args) to run, for sending with other calls (`scripts_run`);
        `read_reply` makes its reply the entries."""
        high, low = lex_range(bounds)
        # One script call, one string back: parsing a reply per member cost more than the read.
        return self._read, [home_key(user_id)], [high, low, count, 1 if bounds.ascending else 0]

    @staticmethod
    def read_reply(joined: Any, bounds: Bounds) -> list[Entry] | None:
        if joined is None:
            return None
        text = joined.decode() if isinstance(joined, bytes) else str(joined)
        found = entries_of_joined(text)
        if bounds.ascending:
            found.reverse()
        return found

    def remove_post(self, post_id: int, user_ids: Iterable[int]) -> None:
        low, high = f"[{post_id:019d}:", f"[{post_id:019d};"
        batch: list[str] = []
        for user_id in user_ids:
            batch.append(home_key(user_id))
            if len(batch) >= self.batch_size:
                self._remove_range(keys=batch, args=[low, high])
                batch = []
        if batch:
            self._remove_range(keys=batch, args=[low, high])

    def remove_entries(self, user_id: int, entries: Sequence[Entry]) -> None:
        if entries:
            self.client.zrem(home_key(user_id), *[member_of(entry) for entry in entries])

    def remove_authors(self, user_id: int, author_ids: set[int], *, with_reposts: bool) -> None:
        if not author_ids:
            return
        key = home_key(user_id)
        doomed: list[bytes] = []
        members = cast(list[bytes], self.client.zrange(key, 0, -1))
        for member in members:
            if member in (_SENTINEL, _SENTINEL.encode()):
                continue
            entry = entry_of_member(member)
            if entry.author_id in author_ids or (with_reposts and entry.origin_author_id in author_ids):
                doomed.append(member)
        if doomed:
            self.client.zrem(key, *doomed)

    def trim(self, user_ids: Sequence[int]) -> None:
        cap = settings.TIMELINE_CAP
        pipe = self.client.pipeline(transaction=False)
        for user_id in user_ids:
            pipe.zremrangebyrank(home_key(user_id), 1, -(cap + 1))
        pipe.execute()


_redis_stores: dict[str, RedisTimelineStore] = {}


def timeline_store() -> TimelineStore:
    """The backend for this process: Redis when REDIS_URL is set, else database rows."""
    if redis_enabled():
        url = str(settings.REDIS_URL)
        store = _redis_stores.get(url)
        if store is None:
            store = _redis_stores[url] = RedisTimelineStore()
        return store
    return DatabaseTimelineStore()
