"""The short links standing for the URLs in posts, as rendering needs them: per post, URL -> code.

Every http(s) URL in a post's text that leads off the site gets a short link of its own when the post
is written (see `services.post_links`), so that a click on it is counted under its destination. Post text is rendered
when it is read, so the codes are looked up then: a post's links are made in the transaction that
writes the post and never change, so they are kept in this process once found. A post whose links are
not all there (one written before posts had links, say) is looked up again after a while rather than
on every read, and links to its destinations directly meanwhile.
"""

import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping

from weituan.microblog.text import extract_urls
from weituan.tracking import facade as tracking

KEPT_POSTS = 50_000
RECHECK_SECONDS = 60.0

Links = tuple[tuple[str, str], ...]  # (URL, code) pairs, in the order the text holds them
_NONE: Links = ()
_KEPT: "OrderedDict[int, tuple[Links, float, tuple[str, ...]]]" = (
    OrderedDict()
)  # post id -> (links, look again after, URLs)
_LOCK = threading.Lock()


def outbound_urls(text: str) -> list[str]:
    """The URLs of `text` that get a short link, each once, in order: every http(s) URL leading off the
    site (see `outbound_targets`)."""
    if "://" not in text:
        return []
    return tracking.outbound_targets(extract_urls(text))


def post_links_keep(post_id: int, codes: Mapping[str, str], urls: Iterable[str]) -> Links:
    """Keep the links of a post (its `urls`, as `outbound_urls` gives them, with their `codes`) in this
    process; returns them as `post_short_links` does."""
    wanted = list(urls)
    links = tuple((url, codes[url]) for url in wanted if url in codes)
    again = float("inf") if len(links) == len(wanted) else time.monotonic() + RECHECK_SECONDS
    with _LOCK:
        _KEPT[post_id] = (links, again, tuple(wanted))
        _KEPT.move_to_end(post_id)
        while len(_KEPT) > KEPT_POSTS:
            _KEPT.popitem(last=False)
    return links


def _kept(post_id: int, text: str | None = None) -> Links | None:
    """The links kept for `post_id`; with `text`, only while they are those of that text's URLs (an
    edit may have changed them since, in another process)."""
    with _LOCK:
        found = _KEPT.get(post_id)
        if found is None or found[1] < time.monotonic():
            return None
        _KEPT.move_to_end(post_id)
    if text is not None and found[2] != tuple(outbound_urls(text)):
        return None
    return found[0]


def post_short_links_preload(posts: Iterable[tuple[int, str]]) -> None:
    """Look up, in one query, the links of those of `posts` ((id, text) pairs) that hold a URL and are
    not kept yet, so rendering a page of posts costs one query, not one per post."""
    wanted: dict[int, list[str]] = {}
    for post_id, text in posts:
        if post_id in wanted or "://" not in text or _kept(post_id, text) is not None:
            continue
        urls = outbound_urls(text)
        if urls:
            wanted[post_id] = urls
    if not wanted:
        return
    found = tracking.outbound_links_of(wanted)
    for post_id, urls in wanted.items():
        post_links_keep(post_id, found.get(post_id, {}), urls)


def post_short_links(post_id: int, text: str) -> Links:
    """The (URL, code) pairs of the links standing for the URLs in a post's `text`; () when it holds
    none. No query for a post without a URL or whose links are kept."""
    if "://" not in text:
        return _NONE
    kept = _kept(post_id, text)
    if kept is not None:
        return kept
    urls = outbound_urls(text)
    if not urls:
        return _NONE
    found = tracking.outbound_links_of([post_id]).get(post_id, {})
    return post_links_keep(post_id, found, urls)
