"""The JSON body of a home timeline page, assembled from statuses rendered once per version of their rows.

A page shows posts that many readers see, and only two things in a status differ between most readers:
the `favourited`, `reblogged`, `bookmarked` and `pinned` flags (of the status, the status it reblogs
and the status it quotes).
(A status whose repost chain carries someone hidden from the reader is rendered for that reader alone:
see `home_statuses_bytes`.)
So each status is rendered for nobody once and kept as JSON bytes cut at those flags; a page is then
one query for the posts' versions and the viewer's flags (see `post_versions`), and the kept bytes of
each post joined with `true`/`false` where the flags go. A kept status is used only while the versions
it was rendered from are current: a new count, an edit, a deletion, a profile change or a new image
description shows on the next read. Statuses not kept (or changed) are hydrated and rendered as the
Status serializer renders them, so the body is byte for byte `orjson.dumps` of the Status entities.
"""

import re
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, NamedTuple

import orjson
from django.http import HttpRequest

from weituan.mastodon.serializers_quotes import (
    QuoteRequirement,
    quotable_posts,
    quote_approval_needs_viewer,
    quote_requirements,
    statuses_nested,
)
from weituan.mastodon.serializers_statuses import (
    chain_authors_shown,
    site_base,
    status_rendered,
    statuses_for_reader,
    statuses_preload,
    timeline_statuses_json,
)
from weituan.microblog.queries.posts import post_rows, posts_hydrate_rows
from weituan.microblog.queries.versions import post_versions
from weituan.tracking import facade as tracking

# Stands in for a flag while a status is rendered; random per process, so no text can imitate it.
_MARK = "wt-flag-" + secrets.token_hex(12)
_SLOT = re.compile(b'"' + re.escape(_MARK.encode()) + b"([frbpq])([0-9]+)" + b'"')

CACHE_SIZE = 10_000


class QuoteSlot(NamedTuple):
    """What a reader's `quote_approval.current_user` of a status depends on when a policy on the way is
    not public (see `quote_requirements`)."""

    post_id: int
    requires: tuple[QuoteRequirement, ...]


class Template(NamedTuple):
    """A status's JSON cut at its viewer flags: `parts` around `slots`, each (kind, post id) where kind is
    one of FLAG_KINDS or b"q" (`quote_approval.current_user`, only where the policy is not public: see
    `quote_slots`); `plain` is the JSON with every flag false and every such quote denied, what most
    readers get, and `slot_ids` the posts the flags are about."""

    parts: tuple[bytes, ...]
    slots: tuple[tuple[bytes, int], ...]
    plain: bytes
    slot_ids: frozenset[int]
    quote_slots: tuple[QuoteSlot, ...] = ()
    # The accounts whose comments the status's chains carry (see `chain_authors_shown`).
    chain_authors: frozenset[int] = frozenset()

    def fill(
        self, flags: Mapping[bytes, Collection[int]], quotable: set[int] | frozenset[int] = frozenset()
    ) -> bytes:
        """The JSON for a reader whose flags are `flags` (the posts of each kind of FLAG_KINDS)."""
        ids = self.slot_ids
        if all(ids.isdisjoint(posts) for posts in flags.values()) and ids.isdisjoint(quotable):
            return self.plain
        parts = self.parts
        out = [parts[0]]
        for index, (kind, post_id) in enumerate(self.slots, 1):
            if kind == b"q":
                out.append(_AUTOMATIC if post_id in quotable else _DENIED)
            else:
                out.append(b"true" if post_id in flags.get(kind, ()) else b"false")
            out.append(parts[index])
        return b"".join(out)


_AUTOMATIC, _DENIED = b'"automatic"', b'"denied"'

# The reader's flags a status carries, by the kind of their slots.
FLAG_KINDS = {b"f": "favourited", b"r": "reblogged", b"b": "bookmarked", b"p": "pinned"}


def template_of(
    parts: tuple[bytes, ...],
    slots: tuple[tuple[bytes, int], ...],
    quote_slots: tuple[QuoteSlot, ...] = (),
    chain_authors: frozenset[int] = frozenset(),
) -> Template:
    plain = [parts[0]]
    for index in range(1, len(parts)):
        plain += [_DENIED if slots[index - 1][0] == b"q" else b"false", parts[index]]
    slot_ids = frozenset(post_id for _, post_id in slots)
    return Template(parts, slots, b"".join(plain), slot_ids, quote_slots, chain_authors)


def quotable_by(templates: Sequence[Template], viewer_id: int) -> set[int]:
    """The posts behind the templates' quote slots that the viewer may quote (see `quotable_posts`)."""
    return quotable_posts(
        {slot.post_id: slot.requires for template in templates for slot in template.quote_slots}, viewer_id
    )


_TEMPLATES: "OrderedDict[tuple[str, int], tuple[tuple[Any, ...], Template]]" = OrderedDict()
_LOCK = threading.Lock()


def home_statuses_clear() -> None:
    """Forget every kept status (tests, and memory when wanted)."""
    with _LOCK:
        _TEMPLATES.clear()


def _marked(status: dict[str, Any]) -> dict[str, Any]:
    """A copy of `status` with a mark in place of each viewer flag, at every level the flags appear."""
    copy = dict(status)
    post_id = status["id"]
    for kind, name in FLAG_KINDS.items():
        copy[name] = f"{_MARK}{kind.decode()}{post_id}"
    if quote_approval_needs_viewer(status):
        copy["quote_approval"] = {**status["quote_approval"], "current_user": f"{_MARK}q{post_id}"}
    if status["reblog"] is not None:
        copy["reblog"] = _marked(status["reblog"])
    quote = status["quote"]
    if quote is not None and quote.get("quoted_status") is not None:
        copy["quote"] = {**quote, "quoted_status": _marked(quote["quoted_status"])}
    return copy


def _template(status: dict[str, Any]) -> Template | None:
    """The status's template, or None when orjson cannot write it (the page is then rendered whole)."""
    from weituan.api import FastJSONRenderer, _ninja_default

    try:
        data = orjson.dumps(_marked(status), default=_ninja_default, option=FastJSONRenderer._options)
    except orjson.JSONEncodeError:
        return None
    pieces = _SLOT.split(data)
    parts = tuple(pieces[0::3])
    slots = tuple((kind, int(post_id)) for kind, post_id in zip(pieces[1::3], pieces[2::3], strict=True))
    quote_slots = tuple(
        QuoteSlot(
            post_id=int(nested["id"]),
            requires=quote_requirements(nested),
        )
        for nested in statuses_nested(status)
        if quote_approval_needs_viewer(nested)
    )
    return template_of(parts, slots, quote_slots, chain_authors_shown(status))


def home_statuses_body(
    post_ids: Sequence[int], viewer_id: int, request: HttpRequest | None, hidden: Collection[int] = ()
) -> bytes:
    """The JSON array of the Status entities of `post_ids` as `viewer_id` sees them, in order (missing
    and deleted posts left out), `hidden` being the accounts hidden from them (the read context's): the
    bytes the API's renderer makes of `timeline_statuses_json(post_ids, viewer_id, request, hidden)`."""
    return home_statuses_bytes(post_ids, viewer_id, site_base(request), lambda: request, hidden)


def home_statuses_bytes(
    post_ids: Sequence[int],
    viewer_id: int,
    base: str,
    request_of: Callable[[], HttpRequest | None],
    hidden: Collection[int] = (),
) -> bytes:
    """`home_statuses_body` for a request whose `site_base` is `base`; the request itself is made by
    `request_of` only when a status has to be rendered (none kept, or changed since, or one whose chain
    carries an account of `hidden`, which is rendered for this reader alone and not kept)."""
    versions = post_versions(post_ids, viewer_id)
    wanted = [
        post_id
        for post_id in dict.fromkeys(int(post_id) for post_id in post_ids)
        if post_id in versions.asked and post_id not in versions.deleted
    ]
    fingerprints = {post_id: versions.fingerprint(post_id) for post_id in wanted}
    templates: dict[int, Template] = {}
    missing: set[int] = set()
    with _LOCK:
        for post_id in wanted:
            kept = _TEMPLATES.get((base, post_id))
            if kept is not None and kept[0] == fingerprints[post_id]:
                _TEMPLATES.move_to_end((base, post_id))
                templates[post_id] = kept[1]
            else:
                missing.add(post_id)
    if missing:
        rows = post_rows(sorted(missing))
        request = request_of()
        fresh: dict[int, Template] = {}
        views = posts_hydrate_rows(rows, sorted(missing), None, only=missing)
        statuses_preload(views)
        for view in views:
            template = _template(status_rendered(view, request))
            if template is None:
                return _whole(post_ids, viewer_id, request, hidden)
            fresh[view.id] = template
        templates.update(fresh)
        with _LOCK:
            for post_id, template in fresh.items():
                _TEMPLATES[(base, post_id)] = (fingerprints[post_id], template)
            while len(_TEMPLATES) > CACHE_SIZE:
                _TEMPLATES.popitem(last=False)
    if hidden:
        hides = frozenset(hidden)
        own = [
            post_id
            for post_id in wanted
            if post_id in templates and not templates[post_id].chain_authors.isdisjoint(hides)
        ]
        if own:
            for post_id in own:  # a status gone meanwhile is left out rather than shown whole
                del templates[post_id]
            for status in statuses_for_reader(own, viewer_id, request_of()):
                template = _template(status)
                if template is None:
                    return _whole(post_ids, viewer_id, request_of(), hidden)
                templates[int(status["id"])] = template
    flags = {b"f": versions.liked, b"r": versions.reposted, b"b": versions.bookmarked, b"p": versions.pinned}
    shown = [post_id for post_id in wanted if post_id in templates]
    tracking.impressions_record(post_ids=shown, user_id=viewer_id, timeline="home")
    page = [templates[post_id] for post_id in shown]
    quotable = quotable_by(page, viewer_id) if any(template.quote_slots for template in page) else set()
    if quotable or any(flags.values()):
        parts = [template.fill(flags, quotable) for template in page]
    else:  # most pages: the reader liked, reposted, kept and pinned none of them
        parts = [template.plain for template in page]
    return b"[" + b",".join(parts) + b"]"


def _whole(
    post_ids: Sequence[int], viewer_id: int, request: HttpRequest | None, hidden: Collection[int]
) -> bytes:
    from weituan.api import FastJSONRenderer

    statuses = timeline_statuses_json(post_ids, viewer_id, request, hidden)
    body = FastJSONRenderer().render(request, statuses, response_status=200)  # type: ignore[arg-type]
    return body if isinstance(body, bytes) else str(body).encode()
