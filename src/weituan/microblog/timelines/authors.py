"""Recent posts of each high-follower author kept in Redis, for the read-time merge of the home timeline.

Authors above FANOUT_FOLLOWER_THRESHOLD are not fanned out; every home read merges in their newest posts.
Walking the posts table once per such author on every read was the cost of a home read at scale, so
with Redis each author's newest AUTHOR_INDEX_CAP entries are kept in a sorted set laid out like a home
timeline (see `store`): a read is then one round trip for all the authors, merged on the server.

The index is only a copy. A missing key is rebuilt from the posts table on the next read; fan-out adds
each new post to its author's set if the set exists, and a withdrawal removes it. A page that reaches
below the oldest kept entry of a full set is read from the posts table for that author, so deep
pages stay exact. Without Redis, reads go to the posts table (`home.authors_posts`).
"""

import heapq
from collections.abc import Callable, Sequence
from typing import Any

from weituan.core.redis import get_redis, rkey, scripts_run
from weituan.microblog.timelines.store import (
    Bounds,
    Entry,
    entries_of_joined,
    entry_of_member,
    lex_range,
    member_of,
)

AUTHOR_INDEX_CAP = 200
_SENTINEL = "0"

# ARGV: member, cap. Only an index that exists gets the entry (a missing one is rebuilt on read).
_ADD_LUA = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('ZADD', KEYS[1], 0, ARGV[1])
  local size = redis.call('ZCARD', KEYS[1])
  local cap = tonumber(ARGV[2])
  if size > cap + 1 then
    redis.call('ZREMRANGEBYRANK', KEYS[1], 1, size - cap - 1)
  end
  return 1
end
return 0
"""


# Merges the authors' indexes on the server, so only the page travels. KEYS: a home timeline when the
# timeline's count is above 0, then the authors' indexes; ARGV: high, low (a ZREVRANGEBYLEX range), the
# timeline's count, the page's count, cap. Returns the timeline's members in the range joined by commas
# (false when it is not built or not asked for), a mark per index (0 used, 1 missing: rebuild it, 2 full
# and ending inside the range: read the posts table) and the newest `count` members of the usable ones.
# When the timeline holds its whole count in the range, the page cannot reach below the last of them
# (the slack covers entries dropped for a block or mute), so each author is walked only down to it: most
# followed big authors have posted nothing since and answer nothing, instead of a page each.
_MERGE_LUA = """
local high, floor = ARGV[1], ARGV[2]
local tcount, count, cap = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local timeline = false
local first = 1
if tcount > 0 then
  first = 2
  if redis.call('EXISTS', KEYS[1]) == 1 then
    local members = redis.call('ZREVRANGEBYLEX', KEYS[1], high, floor, 'LIMIT', 0, tcount)
    timeline = table.concat(members, ',')
    if #members == tcount then
      floor = '(' .. members[#members]
    end
  end
end
local lowest = string.sub(floor, 2)
local marks = {}
local found = {}
for index = first, #KEYS do
  local key = KEYS[index]
  local mark = 0
  local size = redis.call('ZCARD', key)
  if size == 0 then
    mark = 1
  else
    local members = redis.call('ZREVRANGEBYLEX', key, high, floor, 'LIMIT', 0, count)
    if #members < count and size > cap then
      local oldest = redis.call('ZRANGE', key, 1, 1)[1]
      if oldest ~= nil and oldest > lowest then mark = 2 end
    end
    if mark == 0 then
      for _, member in ipairs(members) do found[#found + 1] = member end
    end
  end
  marks[#marks + 1] = mark
end
table.sort(found, function(a, b) return a > b end)
local page = {}
for index = 1, math.min(count, #found) do page[index] = found[index] end
return {timeline, marks, page}
"""


_scripts: dict[tuple[int, str], Any] = {}


def _script(lua: str) -> Any:
    """`lua` registered on this process's client (sent by hash after the first call)."""
    client = get_redis()
    script = _scripts.get((id(client), lua))
    if script is None:
        script = _scripts[(id(client), lua)] = client.register_script(lua)
    return script


def author_key(author_id: int) -> str:
    return rkey("tl", "author", author_id)


def author_index_add(entry: Entry) -> bool:
    """Add a new post to its author's index, if the index exists; True when it was added."""
    script = _script(_ADD_LUA)
    return bool(script(keys=[author_key(entry.author_id)], args=[member_of(entry), AUTHOR_INDEX_CAP]))


def author_index_add_many(entries: Sequence[Entry]) -> list[bool]:
    """`author_index_add` of each entry, in one pipelined round trip; whether each was added."""
    if not entries:
        return []
    script = _script(_ADD_LUA)
    calls = [([author_key(e.author_id)], [member_of(e), AUTHOR_INDEX_CAP]) for e in entries]
    return [bool(added) for added in scripts_run([(script, keys, args) for keys, args in calls])]


def author_index_remove(*, post_id: int, author_id: int) -> None:
    """Take a deleted post out of its author's index."""
    get_redis().zremrangebylex(author_key(author_id), f"[{post_id:019d}:", f"[{post_id:019d};")


ReadPosts = Callable[[Sequence[int], Bounds, int], list[Entry]]


def _rebuild(author_ids: Sequence[int], read_posts: ReadPosts) -> dict[int, list[Entry]]:
    """Fill the indexes of `author_ids` from the posts table; returns each author's entries, newest first.

    Merged into whatever a concurrent fan-out added meanwhile, then cut to the cap.
    """
    found = {author_id: read_posts([author_id], Bounds(), AUTHOR_INDEX_CAP) for author_id in author_ids}
    pipe = get_redis().pipeline(transaction=True)
    for author_id, entries in found.items():
        key = author_key(author_id)
        mapping = {member_of(entry): 0 for entry in entries}
        mapping[_SENTINEL] = 0
        pipe.zadd(key, mapping)
        pipe.zremrangebyrank(key, 1, -(AUTHOR_INDEX_CAP + 1))
    pipe.execute()
    return found


def _in_bounds(entries: list[Entry], bounds: Bounds, count: int) -> list[Entry]:
    kept = [
        entry
        for entry in entries
        if (bounds.upper is None or entry.post_id < bounds.upper)
        and (bounds.lower is None or entry.post_id > bounds.lower)
    ]
    return kept[:count]


def authors_recent(
    author_ids: Sequence[int],
    bounds: Bounds,
    count: int,
    read_posts: ReadPosts,
) -> list[Entry]:
    """The newest `count` posts of `author_ids` inside `bounds`, newest first, from the index;
    `read_posts(author_ids, bounds, count)` reads the posts table where the index cannot answer.

    Reads just above a bound (Mastodon's `min_id`, rare) go to the posts table: the index cannot tell
    whether it holds everything between the bound and its oldest entry.
    """
    if not author_ids:
        return []
    if bounds.ascending:
        return read_posts(author_ids, bounds, count)
    (reply,) = scripts_run([_merge_call(None, author_ids, bounds, 0, count)])
    return _authors_page(reply[1], reply[2], author_ids, bounds, count, read_posts)


def _merge_call(
    timeline_key: str | None, author_ids: Sequence[int], bounds: Bounds, timeline_count: int, count: int
) -> tuple[Any, list[str], list[Any]]:
    keys = [author_key(author_id) for author_id in author_ids]
    if timeline_key is not None:
        keys.insert(0, timeline_key)
    high, low = lex_range(bounds)
    return _script(_MERGE_LUA), keys, [high, low, timeline_count, count, AUTHOR_INDEX_CAP]


def _authors_page(
    marks: Sequence[int],
    members: Sequence[bytes],
    author_ids: Sequence[int],
    bounds: Bounds,
    count: int,
    read_posts: ReadPosts,
) -> list[Entry]:
    lists: list[list[Entry]] = [[entry_of_member(member) for member in members]]
    missing = [author_id for author_id, mark in zip(author_ids, marks, strict=True) if mark == 1]
    beyond = [author_id for author_id, mark in zip(author_ids, marks, strict=True) if mark == 2]
    if missing:
        for entries in _rebuild(missing, read_posts).values():
            lists.append(_in_bounds(entries, bounds, count))
    if beyond:
        lists.append(read_posts(beyond, bounds, count))
    # Every list is newest first; the page is the first `count` of their merge.
    page: list[Entry] = []
    for entry in heapq.merge(*lists, reverse=True):
        page.append(entry)
        if len(page) >= count:
            break
    return page


def home_with_authors_call(
    timeline_key: str, author_ids: Sequence[int], bounds: Bounds, timeline_count: int, count: int
) -> tuple[Any, list[str], list[Any]]:
    """A descending home read: the stored timeline (`timeline_count` entries) and the newest `count`
    posts of `author_ids` the page can reach, as one script call (script, keys, args) for `scripts_run`;
    `home_with_authors_reply` finishes it."""
    if bounds.ascending:
        raise ValueError("only a read newest first walks the authors' indexes")
    return _merge_call(timeline_key, author_ids, bounds, timeline_count, count)


def home_with_authors_reply(
    reply: Any, author_ids: Sequence[int], bounds: Bounds, count: int, read_posts: ReadPosts
) -> tuple[list[Entry] | None, list[Entry]]:
    """The stored timeline's entries (None when it is not built) and the authors' part of the page."""
    joined, marks, members = reply
    stored = None
    if joined is not None:
        stored = entries_of_joined(joined.decode() if isinstance(joined, bytes) else str(joined))
    return stored, _authors_page(marks, members, author_ids, bounds, count, read_posts)
