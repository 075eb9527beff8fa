"""Mastodon's Status, MediaAttachment and Notification entities for Weituan posts, plus the Weibo extras.

How Weibo's reposts map onto Mastodon:
- an original post or a comment is a plain status (a comment answers its post through `in_reply_to_id`);
- a repost without any comment in it is a reblog: the wrapper nests the original under `reblog`;
- a repost without a comment of its own of a repost that has one is a reblog of that repost;
- any other repost is a quote post (Mastodon 4.4): its `content` is Weibo's chain
  (`comment//@name: comment...`) and `quote.quoted_status` is the original, as Weibo shows it.
Weibo's own facts (the chain hop by hop, parent, root, depth, deal) are under the extra key "weituan".
"""

import threading
from collections import OrderedDict
from collections.abc import Collection, Sequence
from functools import lru_cache
from typing import Any
from urllib.parse import quote

from django.http import HttpRequest

from weituan.accounts.auth import request_user
from weituan.deals.facade import deal_previews
from weituan.mastodon.serializers_accounts import absolute_url, account_json, mastodon_datetime
from weituan.mastodon.serializers_quotes import (
    quote_approval,
    quote_approvals_for_viewer,
    quote_requires,
    statuses_nested,
)
from weituan.microblog.models import MediaAttachment, Notification, PostEdit, PostKind
from weituan.microblog.queries.bios import bio_mentions_preload
from weituan.microblog.queries.notification_groups import group_key
from weituan.microblog.queries.notifications import mastodon_type
from weituan.microblog.queries.post_links import (
    Links,
    outbound_urls,
    post_short_links,
    post_short_links_preload,
)
from weituan.microblog.queries.posts import (
    PostView,
    post_fingerprint,
    post_row_deleted,
    post_rows,
    posts_hydrate,
    posts_hydrate_rows,
)
from weituan.microblog.stats import account_counts
from weituan.microblog.text import extract_mentions, render_html, topic_key

PREVIEW_SIDE = 400  # the thumbnail's longest side, as stored by media_upload


def site_base(request: HttpRequest | None) -> str:
    """The scheme and host links are built on: the request's, else the configured site URL."""
    return absolute_url("/", request).rstrip("/")


def _image_meta(width: int, height: int) -> dict[str, Any]:
    aspect = round(width / height, 4) if height else 1
    return {"width": width, "height": height, "size": f"{width}x{height}", "aspect": aspect}


def media_json(
    media: MediaAttachment, request: HttpRequest | None = None, *, description: str | None = None
) -> dict[str, Any]:
    """One MediaAttachment entity (always an image on Weituan); `description` instead of its own (what
    an earlier version of a post described it as)."""
    url = absolute_url(media.file.url, request) if media.file else None
    preview = absolute_url(media.thumbnail.url, request) if media.thumbnail else url
    scale = min(1.0, PREVIEW_SIDE / max(media.width, media.height, 1))
    small_w, small_h = max(1, round(media.width * scale)), max(1, round(media.height * scale))
    meta: dict[str, Any] = {
        "original": _image_meta(media.width, media.height),
        "small": _image_meta(small_w, small_h),
    }
    if media.focus_x is not None and media.focus_y is not None:
        meta["focus"] = {"x": media.focus_x, "y": media.focus_y}
    shown = media.description if description is None else description
    return {
        "id": str(media.id),
        "type": "image",
        "url": url,
        "preview_url": preview,
        "remote_url": None,
        "preview_remote_url": None,
        "text_url": None,
        "meta": meta,
        "description": shown or None,
        "blurhash": None,
    }


def _reblog_target(view: PostView) -> tuple[bool, PostView | None]:
    """(shown as a reblog?, the status it nests). See the module docstring for the rules; a chain is
    read as shown (`PostView.shown_chain`), so a repost whose only words above it were deleted, or are
    by someone hidden from the reader, reblogs the original."""
    post = view.post
    if post.kind != PostKind.REPOST or post.comment:
        return False, None
    if not any(hop["comment"] for hop in view.shown_chain):
        return True, view.root
    parent = view.parent
    if parent is not None and parent.post.kind == PostKind.REPOST and parent.post.comment:
        return True, parent
    return False, None


def _weituan_extras(view: PostView) -> dict[str, Any]:
    post = view.post
    return {
        "kind": post.kind,
        "comment": post.comment if post.kind == PostKind.REPOST else None,
        "chain": [
            {
                "post_id": str(hop.get("post_id")),
                "account_id": str(hop.get("user_id")),
                "username": hop.get("username"),
                "comment": hop.get("comment", ""),
                "deleted": hop["deleted"],
            }
            for hop in view.shown_chain
        ],
        "parent_id": str(post.parent_id) if post.parent_id else None,
        "root_id": str(post.root_id) if post.root_id else None,
        "depth": post.depth,
        "deal_id": str(post.deal_id) if post.deal_id else None,
    }


# Mastodon 4.5's Quote states for a quoted post whose author is hidden from the reader, by the reason
# (`PostView.hidden_from_viewer`): its author blocked them (Mastodon: the post is not theirs to see),
# they blocked its author, or they muted its author. Weituan hides the post itself in each case.
_HIDDEN_QUOTE_STATES = {
    "blocked_by": "unauthorized",
    "blocking": "blocked_account",
    "muting": "muted_account",
}


def _quote_json(view: PostView, *, level: int, request: HttpRequest | None) -> dict[str, Any]:
    if view.post.quote_revoked_at is not None:
        return {"state": "revoked", "quoted_status": None}
    root = view.root
    if root is None:
        # Not loaded with this view: point at it instead.
        return {"state": "accepted", "quoted_status_id": str(view.post.root_id)}
    if root.is_deleted:
        return {"state": "deleted", "quoted_status": None}
    if root.hidden_from_viewer:
        return {"state": _HIDDEN_QUOTE_STATES[root.hidden_from_viewer], "quoted_status": None}
    if level >= 2:
        return {"state": "accepted", "quoted_status_id": str(root.id)}
    return {"state": "accepted", "quoted_status": _status(root, level=level + 1, request=request)}


@lru_cache(maxsize=20_000)
def _content_html(text: str, base: str, mentions: tuple[str, ...], links: Links) -> str:
    # The HTML is a pure function of these, and a timeline shows the same posts to many readers.
    return render_html(text, base_url=base, mentions=mentions, short_links=dict(links))


def statuses_preload(views: Sequence[PostView]) -> None:
    """What rendering these posts and the posts they show reads besides their rows, one query each:
    the short links of their URLs, the previews of their deals and the accounts their authors' bios
    name (each only when there is something to read)."""
    shown = [
        *views,
        *(view.root for view in views if view.root),
        *(view.parent for view in views if view.parent),
    ]
    post_short_links_preload((view.id, view.post.text) for view in shown)
    deal_previews({view.post.deal_id for view in shown if view.post.deal_id})
    bio_mentions_preload([view.author for view in shown])


def _deal_card(deal_id: int, base: str) -> dict[str, Any] | None:
    """The PreviewCard of the deal a post carries (a deal post, or a repost of one): what clients show
    under the status, a link to the deal page with its title, price and picture.

    The deal's first picture reaches clients here, as the card's `image` (with the title as its alt
    text), not as a media attachment of the status: Mastodon's clients hide a status's card when it has
    attachments, which would drop the deal's link, price and title, and a repost or quote would show
    the picture once per level. The card's facts are fixed once the deal is published (see
    `DealPreview`), so a kept rendering of the status (`home_statuses`) stays true."""
    preview = deal_previews([deal_id]).get(deal_id)
    if preview is None:
        return None
    image = preview.image
    if image and image.startswith("/"):
        image = base + image
    return {
        "url": base + preview.path,
        "title": preview.title,
        "description": preview.description,
        "type": "link",
        "author_name": f"@{preview.merchant}",
        "author_url": f"{base}/@{quote(preview.merchant)}",
        "authors": [],
        "provider_name": "Weituan",
        "provider_url": base,
        "html": "",
        "width": preview.image_width if image else 0,
        "height": preview.image_height if image else 0,
        "image": image,
        "image_description": preview.title if image else "",
        "embed_url": "",
        "blurhash": None,
        "published_at": None,
    }


def _origin_hidden(view: PostView) -> bool:
    return view.root is not None and bool(view.root.hidden_from_viewer)


def _account(view: PostView, request: HttpRequest | None) -> dict[str, Any]:
    """The author's Account entity, built once per request however many of their posts are shown."""
    if request is None:
        return account_json(view.author, view.author_counts, request=request)
    memo: dict[tuple[int, Any], dict[str, Any]] | None = getattr(request, "_weituan_accounts", None)
    if memo is None:
        memo = {}
        request._weituan_accounts = memo  # type: ignore[attr-defined]
    key = (view.author.pk, view.author_counts)
    found = memo.get(key)
    if found is None:
        found = memo[key] = account_json(view.author, view.author_counts, request=request)
    return found


def _status(view: PostView, *, level: int, request: HttpRequest | None) -> dict[str, Any]:
    post = view.post
    base = site_base(request)
    url = f"{base}/@{quote(view.author.username)}/{post.id}"
    as_reblog, target = _reblog_target(view)
    nested = None
    # A reblog of a post hidden from the reader (see PostView.hidden_from_viewer) nests nothing: it is
    # shown as the quote it also is, whose state says so when the original is what is hidden.
    shown = target is not None and not target.is_deleted and not target.hidden_from_viewer
    if as_reblog and target is not None and shown and level == 0:
        nested = _status(target, level=1, request=request)
    is_wrapper = nested is not None
    in_reply_to_id = None
    in_reply_to_account_id = None
    if post.kind == PostKind.COMMENT:
        in_reply_to_id = post.reply_to_id or post.parent_id
        if post.reply_to_id:
            in_reply_to_account_id = view.reply_to_author_id
        elif view.parent is not None:
            in_reply_to_account_id = view.parent.author.pk
    requires = quote_requires(view)
    quote_entity = None
    if post.kind == PostKind.REPOST and not is_wrapper:
        quote_entity = _quote_json(view, level=level, request=request)
    content = (
        ""
        if is_wrapper
        else _content_html(
            view.shown_text,
            base,
            # The reposters named in the chain are real accounts too, so their names are links.
            tuple(
                [user.username for user in view.mentions]
                + [str(hop.get("username")) for hop in view.shown_chain]
            ),
            # The links of the whole text: the post's links are looked up, and kept, for all of it.
            post_short_links(post.id, post.text),
        )
    )
    return {
        "id": str(post.id),
        "uri": url,
        "url": url,
        "created_at": mastodon_datetime(post.created_at),
        "edited_at": mastodon_datetime(post.edited_at),
        "account": _account(view, request),
        "content": content,
        "visibility": post.visibility,
        "sensitive": False,
        "spoiler_text": "",
        "media_attachments": [] if is_wrapper else [media_json(media, request) for media in view.media],
        "application": None,
        "mentions": [
            {
                "id": str(user.pk),
                "username": user.username,
                "acct": user.username,
                "url": f"{base}/@{quote(user.username)}",
            }
            for user in view.mentions
        ],
        "tags": [
            {"name": topic.display, "url": f"{base}/topics/{quote(topic_key(topic.name), safe='')}"}
            for topic in view.topics
        ],
        "emojis": [],
        "reblogs_count": post.reposts_count,
        "favourites_count": post.likes_count,
        "replies_count": post.comments_count,
        "quotes_count": post.quotes_count,
        "in_reply_to_id": str(in_reply_to_id) if in_reply_to_id else None,
        "in_reply_to_account_id": str(in_reply_to_account_id) if in_reply_to_account_id else None,
        "reblog": nested,
        "quote": quote_entity,
        "quote_approval": quote_approval(post, requires),
        "poll": None,
        # A repost carries the original's deal, which is not shown when the original is hidden.
        "card": _deal_card(post.deal_id, base) if post.deal_id and not _origin_hidden(view) else None,
        "language": post.language or None,
        "text": None,
        "favourited": view.liked_by_viewer,
        "reblogged": view.reposted_by_viewer,
        "muted": False,
        "bookmarked": view.bookmarked_by_viewer,
        "pinned": view.pinned_by_viewer,
        "filtered": [],
        "weituan": {**_weituan_extras(view), "quote_requires": requires},
    }


def _viewer_id(request: HttpRequest | None) -> int | None:
    user = request_user(request) if request is not None else None
    return int(user.pk) if user is not None else None


def status_rendered(view: PostView, request: HttpRequest | None = None) -> dict[str, Any]:
    """One Status entity as a reader who does not follow its author sees it (what is kept for many,
    from a view read for nobody: one read for a viewer carries what is hidden from them)."""
    return _status(view, level=0, request=request)


def status_json(view: PostView, request: HttpRequest | None = None) -> dict[str, Any]:
    """One Status entity, for the request's user."""
    status = _status(view, level=0, request=request)
    quote_approvals_for_viewer([status], _viewer_id(request))
    return status


def statuses_json(views: Sequence[PostView], request: HttpRequest | None = None) -> list[dict[str, Any]]:
    """Status entities for hydrated posts, in order, for the request's user."""
    statuses_preload(views)
    statuses = [_status(view, level=0, request=request) for view in views]
    quote_approvals_for_viewer(statuses, _viewer_id(request))
    return statuses


def chain_authors_shown(status: dict[str, Any]) -> frozenset[int]:
    """The accounts whose comments the chains of a rendered status carry (its own, and the status it
    reblogs): a reader who hides any of them gets the status rendered for them (`statuses_for_reader`)."""
    return frozenset(
        int(hop["account_id"])
        for nested in statuses_nested(status)
        for hop in nested["weituan"]["chain"]
        if str(hop["account_id"]).isdigit()
    )


def statuses_for_reader(
    post_ids: Sequence[int], viewer_id: int, request: HttpRequest | None
) -> list[dict[str, Any]]:
    """The statuses of `post_ids` rendered for the reader `viewer_id` alone, as `status_rendered`
    renders them (the reader's own flags are the caller's to set): for the few statuses of a page
    whose chains carry someone hidden from the reader, which the renderings kept for everyone show."""
    wanted = list(dict.fromkeys(int(post_id) for post_id in post_ids))
    views = posts_hydrate_rows(post_rows(wanted, viewer_id), wanted, viewer_id, only=set(wanted))
    statuses_preload(views)
    return [_status(view, level=0, request=request) for view in views]


# Rendered statuses by (site base, post id), each with the fingerprint of the rows it was rendered from
# and the accounts its chains carry.
_RENDERED: "OrderedDict[tuple[str, int], tuple[tuple[Any, ...], dict[str, Any], frozenset[int]]]" = (
    OrderedDict()
)
_RENDERED_LOCK = threading.Lock()
RENDERED_CACHE_SIZE = 10_000


def rendered_statuses_clear() -> None:
    with _RENDERED_LOCK:
        _RENDERED.clear()


def _with_viewer(status: dict[str, Any], flags: tuple[set[int], ...]) -> dict[str, Any]:
    """A copy of a status rendered for nobody, with the viewer's `favourited`, `reblogged`, `bookmarked`
    and `pinned` (`flags`, the posts of each, in that order) at every level."""
    copy = dict(status)
    post_id = int(status["id"])
    for name, posts in zip(VIEWER_FLAGS, flags, strict=True):
        copy[name] = post_id in posts
    if status["reblog"] is not None:
        copy["reblog"] = _with_viewer(status["reblog"], flags)
    quote = status["quote"]
    if quote is not None and quote.get("quoted_status") is not None:
        copy["quote"] = {**quote, "quoted_status": _with_viewer(quote["quoted_status"], flags)}
    return copy


# A status's fields that say what its reader did with it.
VIEWER_FLAGS = ("favourited", "reblogged", "bookmarked", "pinned")


def timeline_statuses_json(
    post_ids: Sequence[int],
    viewer_id: int | None,
    request: HttpRequest | None = None,
    hidden: Collection[int] = (),
) -> list[dict[str, Any]]:
    """Status entities of a timeline page, in order (missing and deleted posts left out), as
    `statuses_json(posts_hydrate(post_ids, viewer))` would give, in fewer queries and less work.

    The same posts appear on many readers' pages, so a status is rendered once (for nobody) and kept
    with the rows it came from. One query reads the rows of the page (the posts, their parents and
    roots, authors and counters: everything shown that can change); a kept status is used only when
    those rows are unchanged, so a new like count, an edit, a deletion or a profile change shows at
    once. The viewer's own flags come with those rows, and only the statuses not kept are hydrated
    and rendered. A status whose chain carries one of `hidden` (the accounts hidden from the viewer:
    blocks either way, mutes) is rendered for the viewer alone (`statuses_for_reader`), which costs
    nothing when the viewer hides nobody.
    """
    rows = post_rows(post_ids, viewer_id)
    base = site_base(request)
    wanted = [
        post_id
        for post_id in dict.fromkeys(int(post_id) for post_id in post_ids)
        if post_id in rows.asked and not post_row_deleted(rows, post_id)
    ]
    rendered: dict[int, dict[str, Any]] = {}
    authors: dict[int, frozenset[int]] = {}
    missing: set[int] = set()
    fingerprints = {post_id: post_fingerprint(rows, post_id) for post_id in wanted}
    with _RENDERED_LOCK:
        for post_id in wanted:
            kept = _RENDERED.get((base, post_id))
            if kept is not None and kept[0] == fingerprints[post_id]:
                _RENDERED.move_to_end((base, post_id))
                rendered[post_id], authors[post_id] = kept[1], kept[2]
            else:
                missing.add(post_id)
    if missing:
        views = posts_hydrate_rows(rows, sorted(missing), None, only=missing)
        statuses_preload(views)
        fresh = {view.id: _status(view, level=0, request=request) for view in views}
        rendered.update(fresh)
        authors.update((post_id, chain_authors_shown(data)) for post_id, data in fresh.items())
        with _RENDERED_LOCK:
            for post_id, data in fresh.items():
                _RENDERED[(base, post_id)] = (fingerprints[post_id], data, authors[post_id])
            while len(_RENDERED) > RENDERED_CACHE_SIZE:
                _RENDERED.popitem(last=False)
    if hidden and viewer_id is not None:
        hides = frozenset(hidden)
        own = [post_id for post_id in rendered if not authors[post_id].isdisjoint(hides)]
        if own:
            for post_id in own:  # a status gone meanwhile is left out rather than shown whole
                del rendered[post_id]
            rendered.update(
                (int(status["id"]), status) for status in statuses_for_reader(own, viewer_id, request)
            )
    flags = tuple(flag or set() for flag in (rows.liked, rows.reposted, rows.bookmarked, rows.pinned))
    statuses = [_with_viewer(rendered[post_id], flags) for post_id in wanted if post_id in rendered]
    quote_approvals_for_viewer(statuses, viewer_id)
    return statuses


def deleted_status_json(view: PostView, request: HttpRequest | None = None) -> dict[str, Any]:
    """What DELETE returns: the status as it was, with its source `text` for "delete and redraft"."""
    data = status_json(view, request)
    data["text"] = view.post.comment if view.post.kind == PostKind.REPOST else view.post.text
    return data


def notifications_json(
    notifications: Sequence[Notification], viewer: Any, request: HttpRequest | None = None
) -> list[dict[str, Any]]:
    """Notification entities, with every post and actor loaded in a fixed number of queries.

    For a reblog the status is the post that was reposted (as Mastodon does); for a quote, the repost.
    """
    post_ids = [row.post_id for row in notifications if row.post_id]
    views = {view.id: view for view in posts_hydrate(post_ids, viewer)}
    counts = account_counts(sorted({row.actor_id for row in notifications}))
    shown_views = [*views.values(), *(view.parent for view in views.values() if view.parent)]
    bio_mentions_preload([*(row.actor for row in notifications), *(view.author for view in shown_views)])
    rendered = []
    shown_statuses: list[dict[str, Any]] = []
    for row in notifications:
        kind = mastodon_type(row)
        view = views.get(row.post_id) if row.post_id else None
        status = None
        if view is not None:
            shown = view.parent if kind == "reblog" and view.parent is not None else view
            status = None if shown.is_deleted else status_rendered(shown, request)
            if status is not None:
                shown_statuses.append(status)
        rendered.append(
            {
                "id": str(row.id),
                "type": kind,
                "group_key": group_key(row),
                "created_at": mastodon_datetime(row.created_at),
                "account": account_json(row.actor, counts[row.actor_id], request=request),
                "status": status,
                "weituan": {"kind": row.kind, "read": row.read_at is not None},
            }
        )
    quote_approvals_for_viewer(shown_statuses, _viewer_id(request))  # one query for the whole page
    return rendered


def status_edits_json(
    view: PostView, edits: Sequence[PostEdit], request: HttpRequest | None
) -> list[dict[str, Any]]:
    """Mastodon's StatusEdit entities of a post, oldest first: each version kept (`PostEdit`), with the
    images it carried and their descriptions then, or the post as it is when it was never edited. Each
    version's HTML is made as its status's content is."""
    from weituan.tracking import facade as tracking

    base = site_base(request)
    current = [{"id": item.id, "description": item.description} for item in view.media]
    versions = [(edit.text, edit.created_at, edit.media) for edit in edits] or [
        (view.post.text, view.post.created_at, current)
    ]
    found = tracking.outbound_links_of(
        {view.id: sorted({url for text, _, _ in versions for url in outbound_urls(text)})}
    )
    codes = found.get(view.id, {})
    account = _account(view, request)
    images = {item.id: item for item in view.media}
    earlier = {int(item["id"]) for _, _, media in versions for item in media} - set(images)
    if earlier:  # images later edits took off the post
        images.update((item.id, item) for item in MediaAttachment.objects.filter(id__in=earlier))
    entities = []
    for text, created_at, media in versions:
        names = tuple(extract_mentions(text)) + tuple(str(hop.get("username")) for hop in view.post.chain)
        links = tuple((url, codes[url]) for url in outbound_urls(text) if url in codes)
        entities.append(
            {
                "content": _content_html(text, base, names, links),
                "spoiler_text": "",
                "sensitive": False,
                "created_at": mastodon_datetime(created_at),
                "account": account,
                "poll": None,
                "media_attachments": [
                    media_json(images[int(item["id"])], request, description=item.get("description") or "")
                    for item in media
                    if int(item["id"]) in images
                ],
                "emojis": [],
            }
        )
    return entities
