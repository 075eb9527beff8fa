"""What a Mastodon stream shows its reader: who reads (the token), which stream they asked for, and each
live event rendered as the REST API renders it for them, or left out.

Whether a post belongs on a stream is asked of the REST timelines themselves, bounded to that one post:
the home read (`home_timeline_ids_in`) for `user`, the list read for `list`, the public and topic reads
for `public` and `hashtag`. So follows, blocks either way, mutes, a follow hiding reposts and
followers-only posts are respected exactly as the timelines respect them, and the Status is the one
those timelines render, with the reader's keyword filters of that timeline applied as they apply them.
A new post is an `update`, an edited one a `status.update` on the same streams. A change to the reader's
filters is a `filters_changed` without a payload on their `user` streams, as Mastodon sends it, so their
clients fetch the filters again and apply them to what they already show; the streams themselves keep no
copy of the filters: each event is rendered with the ones the reader has when it is rendered.
The same frames serve the server-sent event streams and the WebSocket (`streaming_websocket`).
Everything here is synchronous (database work): the ASGI side runs it on threads of its own.
"""

from dataclasses import dataclass
from typing import Any, TypedDict

import orjson
from django.http import HttpRequest

from weituan.accounts.scopes import scopes_allow
from weituan.accounts.tokens import access_token_resolve
from weituan.core.errors import NotFound, PermissionDenied, ServiceError, Unauthorized, ValidationFailed
from weituan.core.ids import MAX_ID
from weituan.core.stream_events import Event
from weituan.mastodon.home_statuses import home_statuses_body
from weituan.mastodon.serializers_statuses import notifications_json, timeline_statuses_json
from weituan.mastodon.status_filters import notifications_filtered, statuses_filtered, statuses_filtered_for
from weituan.microblog.models import FilterContext, Follow, NotificationKind, Visibility
from weituan.microblog.queries.filters import reader_filters
from weituan.microblog.queries.lists import follow_list_for_owner
from weituan.microblog.queries.notifications import notifications_page, notifications_shown
from weituan.microblog.queries.relations import hidden_author_ids
from weituan.microblog.timelines.home import home_timeline_ids_in, read_context
from weituan.microblog.timelines.lists import list_timeline_ids
from weituan.microblog.timelines.queries import public_timeline_ids, topic_timeline_ids

# The server-sent event paths under /api/v1/streaming/ and the Mastodon stream each one is.
STREAM_PATHS = {
    "user": "user",
    "user/notification": "user:notification",
    "public": "public",
    "public/local": "public:local",
    "public/remote": "public:remote",
    "public/media": "public:media",
    "public/local/media": "public:local:media",
    "public/remote/media": "public:remote:media",
    "hashtag": "hashtag",
    "hashtag/local": "hashtag:local",
    "list": "list",
}
# The Mastodon streams, by the names a WebSocket client subscribes with.
STREAM_NAMES = frozenset(STREAM_PATHS.values())
USER_STREAMS = ("user", "user:notification")
# The streams only a user (not an application's own token) may open.
_NEEDS_USER = (*USER_STREAMS, "list")
# The scopes a token needs for each stream, as Mastodon asks them.
_STATUSES = ("read", "read:statuses")
_NOTIFICATIONS = ("read", "read:notifications")
_LISTS = ("read", "read:lists")


@dataclass(frozen=True, slots=True)
class Channel:
    """One stream a client listens to: Mastodon's name for it, the topic of a `hashtag` stream and the
    list of a `list` stream."""

    name: str
    tag: str = ""
    list_id: int = 0

    @property
    def needs(self) -> tuple[str, ...]:
        if self.name == "user:notification":
            return _NOTIFICATIONS
        return _LISTS if self.name == "list" else _STATUSES

    @property
    def names(self) -> list[str]:
        """The stream as a WebSocket message names it: `["user"]`, `["hashtag", "团购"]`, `["list", "7"]`."""
        if self.name.startswith("hashtag"):
            return [self.name, self.tag]
        if self.name == "list":
            return [self.name, str(self.list_id)]
        return [self.name]


@dataclass(frozen=True, slots=True)
class Reader:
    """Who reads a stream: the token's user (None for an application's own token), its scopes, and the
    token itself (its row's id: a stream ends when its token does, see `streaming_asgi.StreamHub`)."""

    user: Any
    scopes: str
    token_id: int | None = None

    @property
    def user_id(self) -> int | None:
        return self.user.pk if self.user is not None else None


@dataclass(frozen=True, slots=True)
class Frame:
    """One event as Mastodon sends it: the stream it is on, its name, and its payload (a JSON text, a
    status id for `delete`, None for `filters_changed`, which has none)."""

    channel: Channel
    event: str
    payload: str | None


def stream_reader(token: str | None) -> Reader:
    """The reader a bearer token names; 401 `token_required` without one, `invalid_token` for a token
    that is unknown, revoked or whose user is deactivated (every stream needs a token, as Mastodon's)."""
    if not token:
        raise Unauthorized("Missing access token", code="token_required")
    row = access_token_resolve(token)
    if row is None:
        raise Unauthorized("The access token is invalid", code="invalid_token")
    return Reader(user=row.user, scopes=row.scopes, token_id=row.pk)


def stream_channel(path: str, tag: str | None, list_id: str | None = None) -> Channel:
    """The stream at `path` (after /api/v1/streaming/), with its `tag` or `list` query; 404
    `unknown_stream` for a path that names none (see `channel_of` for the rest)."""
    name = STREAM_PATHS.get(path.strip("/"))
    if name is None:
        raise NotFound("Unknown stream type", code="unknown_stream")
    return channel_of(name, tag, list_id)


def channel_of(name: str, tag: str | None, list_id: str | None) -> Channel:
    """The stream Mastodon calls `name`, with its topic or list: 400 `unknown_stream` for a name that is
    none, 422 `tag_required` for a hashtag stream without its topic, `list_required` for a list stream
    without its list and `invalid_list` for a list id that is no id."""
    if name not in STREAM_NAMES:
        raise ServiceError("Unknown stream type", code="unknown_stream", status=400)
    if name.startswith("hashtag"):
        tag = (tag or "").strip().lstrip("#").strip("#")
        if not tag:
            raise ValidationFailed("A hashtag stream needs the tag parameter", code="tag_required")
        return Channel(name, tag)
    if name == "list":
        text = (list_id or "").strip()
        if not text:
            raise ValidationFailed("A list stream needs the list parameter", code="list_required")
        if not text.isascii() or not text.isdigit() or not 0 < int(text) <= MAX_ID:
            raise ValidationFailed("The list parameter is not a list id", code="invalid_list")
        return Channel(name, list_id=int(text))
    return Channel(name)


def stream_allowed(reader: Reader, channel: Channel) -> None:
    """Refuse a stream the reader may not open: the user and list streams need a user (422
    `user_required`, as the REST API answers an application's own token), every stream needs its scope
    (403 `insufficient_scope`), and a list stream a list of the reader's (404 `not_found`, as the list
    timeline answers)."""
    if not scopes_allow(reader.scopes, channel.needs):
        raise PermissionDenied(
            "This action is outside the authorized scopes",
            code="insufficient_scope",
            required_scopes=list(channel.needs),
        )
    if channel.name in _NEEDS_USER and reader.user is None:
        raise ValidationFailed("This method requires an authenticated user", code="user_required")
    if channel.name == "list":
        follow_list_for_owner(reader.user.pk, channel.list_id)


def stream_open(reader: Reader, channel: Channel) -> None:
    """What opening a `user` stream does first: read the reader's home once, as a client does before
    streaming, so their home timeline is built and they count as an active reader, to whom fan-out
    delivers each new post as it is written."""
    if channel.name == "user" and reader.user_id is not None:
        home_timeline_ids_in(reader.user_id, read_context(reader.user_id), limit=1)


def error_body(exc: ServiceError) -> bytes:
    return orjson.dumps({"error": exc.message, "code": exc.code, **exc.details})


def stream_frames(reader: Reader, channels: list[Channel], event: Event, request: HttpRequest) -> list[Frame]:
    """The frames `event` makes on the reader's `channels` (none when it is not theirs to see)."""
    kind = event.get("t")
    if kind in _POST_EVENTS:
        return _post_frames(reader, channels, int(event["id"]), int(event["a"]), request, _POST_EVENTS[kind])
    if kind == "delete":
        return _delete_frames(reader, channels, event)
    if kind == "notification" and event.get("r") == reader.user_id:
        return _notification_frames(reader, channels, event, request)
    if kind == "filters_changed" and event.get("r") == reader.user_id:
        return [Frame(channel, "filters_changed", None) for channel in channels if channel.name == "user"]
    return []


# A post's events and the Mastodon event each one is on the streams showing the post.
_POST_EVENTS = {"post": "update", "edit": "status.update"}


class _Between(TypedDict):
    max_id: int
    since_id: int
    limit: int


def _between(post_id: int) -> _Between:
    """A page's bounds holding just `post_id`: a timeline read bounded so answers whether the post is on it."""
    return {"max_id": post_id + 1, "since_id": post_id - 1, "limit": 1}


def _follows(user_id: int, author_id: int) -> bool:
    return author_id == user_id or Follow.objects.filter(follower_id=user_id, followee_id=author_id).exists()


def _home_status(user_id: int, post_id: int, author_id: int, request: HttpRequest) -> str | None:
    # Only a post by the reader or someone they follow can be in their home: one probe before the read.
    if not _follows(user_id, author_id):
        return None
    context = read_context(user_id)
    if home_timeline_ids_in(user_id, context, **_between(post_id)) != [post_id]:
        return None
    body = home_statuses_body([post_id], user_id, request, context.hidden)
    if len(body) <= 2:
        return None
    status = body[1:-1].decode()
    # Only a reader with a filter of home has one to apply (as the home read knows without asking).
    return _filtered(user_id, FilterContext.HOME, status) if context.filtered else status


def _filtered(user_id: int | None, context: str, status: str) -> str | None:
    """A rendered status as the reader's filters of `context` leave it, as the REST read does: with
    `filtered` set, or None when a hiding filter matches it."""
    filters = reader_filters(user_id, context)
    if not filters:
        return status
    kept = statuses_filtered([orjson.loads(status)], filters)
    return orjson.dumps(kept[0]).decode() if kept else None


def _post_frames(
    reader: Reader,
    channels: list[Channel],
    post_id: int,
    author_id: int,
    request: HttpRequest,
    event_name: str,
) -> list[Frame]:
    frames: list[Frame] = []
    viewer_id = reader.user_id
    hidden: frozenset[int] | None = None
    for channel in channels:
        if channel.name == "user" and viewer_id is not None:
            status = _home_status(viewer_id, post_id, author_id, request)
            if status is not None:
                frames.append(Frame(channel, event_name, status))
            continue
        if channel.name in USER_STREAMS or "remote" in channel.name:
            continue  # notifications only; and every post here is local (Weituan does not federate)
        if hidden is None:
            hidden = frozenset(hidden_author_ids(viewer_id)) if viewer_id is not None else frozenset()
        if author_id in hidden:
            continue
        if channel.name == "list":
            status = _list_status(reader, channel.list_id, post_id, request, hidden)
            if status is not None:
                frames.append(Frame(channel, event_name, status))
            continue
        media = channel.name.endswith(":media")
        if channel.name.startswith("hashtag"):
            ids = topic_timeline_ids(channel.tag, viewer_id=viewer_id, hidden=hidden, **_between(post_id))
        else:
            ids = public_timeline_ids(
                viewer_id=viewer_id, hidden=hidden, only_media=media, **_between(post_id)
            )
        if ids == [post_id]:
            statuses = timeline_statuses_json(ids, viewer_id, request, hidden)
            status = (
                _filtered(viewer_id, FilterContext.PUBLIC, orjson.dumps(statuses[0]).decode())
                if statuses
                else None
            )
            if status is not None:
                frames.append(Frame(channel, event_name, status))
    return frames


def _list_status(
    reader: Reader, list_id: int, post_id: int, request: HttpRequest, hidden: frozenset[int]
) -> str | None:
    """The post as the reader's list timeline renders it (with the home filters it applies), if it is on
    that list's timeline."""
    viewer_id = reader.user_id
    if viewer_id is None:
        return None
    ids = list_timeline_ids(viewer_id, list_id, hidden=hidden, **_between(post_id))
    if ids != [post_id]:
        return None
    statuses = statuses_filtered_for(
        reader.user, FilterContext.HOME, timeline_statuses_json(ids, viewer_id, request, hidden)
    )
    return orjson.dumps(statuses[0]).decode() if statuses else None


def _delete_frames(reader: Reader, channels: list[Channel], event: Event) -> list[Frame]:
    """A deleted post's id, on the streams that may have shown it: the home of the author and of their
    followers, the public and topic streams for a public post; never across a block or a mute."""
    post_id, author_id = int(event["id"]), int(event["a"])
    viewer_id = reader.user_id
    if viewer_id is not None and author_id != viewer_id and author_id in hidden_author_ids(viewer_id):
        return []
    frames = []
    for channel in channels:
        if channel.name in ("user", "list"):
            # A list's accounts are accounts its owner follows.
            shown = viewer_id is not None and _follows(viewer_id, author_id)
        elif channel.name in USER_STREAMS or "remote" in channel.name:
            shown = False
        else:
            shown = event.get("v") == Visibility.PUBLIC
        if shown:
            frames.append(Frame(channel, "delete", str(post_id)))
    return frames


def _notification_frames(
    reader: Reader, channels: list[Channel], event: Event, request: HttpRequest
) -> list[Frame]:
    """A new notification of the reader's, as their notifications list shows it (none from an account
    they blocked or muted hiding notifications), on the `user` and `user:notification` streams."""
    wanted = [channel for channel in channels if channel.name in USER_STREAMS]
    if not wanted:
        return []
    if "id" in event:
        notification_id = int(event["id"])
        rows = notifications_page(reader.user, **_between(notification_id))
    else:  # a new post's notice, found by its post
        shown = notifications_shown(reader.user).filter(post_id=int(event["p"]), kind=NotificationKind.STATUS)
        rows = list(shown.order_by("-id")[:1])
    if not rows:
        return []
    told = notifications_filtered(reader.user, notifications_json(rows, reader.user, request))
    if not told:
        return []
    payload = orjson.dumps(told[0]).decode()
    return [Frame(channel, "notification", payload) for channel in wanted]
