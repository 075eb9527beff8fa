"""What a Mastodon stream shows its reader: who reads (the token), which stream they asked for, and each
live event rendered as the REST API renders it for them, or left out.

Whether a post belongs on a stream is asked of the REST timelines themselves, bounded to that one post:
the home read (`home_timeline_ids_in`) for `user`, the public and topic reads for `public` and
`hashtag`. So follows, blocks either way, mutes, a follow hiding reposts and followers-only posts are
respected exactly as the timelines respect them, and the Status is the one those timelines render,
with the reader's keyword filters of that timeline applied as they apply them.
Everything here is synchronous (database work): the ASGI side runs it on threads of its own.
"""

from dataclasses import dataclass
from typing import Any, TypedDict

import orjson
from django.http import HttpRequest

from weituan.accounts.scopes import scopes_allow
from weituan.accounts.tokens import access_token_resolve
from weituan.core.errors import NotFound, PermissionDenied, ServiceError, Unauthorized, ValidationFailed
from weituan.core.stream_events import Event
from weituan.mastodon.home_statuses import home_statuses_body
from weituan.mastodon.serializers_statuses import notifications_json, timeline_statuses_json
from weituan.mastodon.status_filters import notifications_filtered, statuses_filtered
from weituan.microblog.models import FilterContext, Follow, NotificationKind, Visibility
from weituan.microblog.queries.filters import reader_filters
from weituan.microblog.queries.notifications import notifications_page, notifications_shown
from weituan.microblog.queries.relations import hidden_author_ids
from weituan.microblog.timelines.home import home_timeline_ids_in, read_context
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
}
USER_STREAMS = ("user", "user:notification")
# The scopes a token needs for each stream, as Mastodon asks them.
_STATUSES = ("read", "read:statuses")
_NOTIFICATIONS = ("read", "read:notifications")


@dataclass(frozen=True, slots=True)
class Channel:
    """One stream a client listens to: Mastodon's name for it, and the topic of a `hashtag` stream."""

    name: str
    tag: str = ""

    @property
    def needs(self) -> tuple[str, ...]:
        return _NOTIFICATIONS if self.name == "user:notification" else _STATUSES


@dataclass(frozen=True, slots=True)
class Reader:
    """Who reads a stream: the token's user (None for an application's own token) and its scopes."""

    user: Any
    scopes: str

    @property
    def user_id(self) -> int | None:
        return self.user.pk if self.user is not None else None


@dataclass(frozen=True, slots=True)
class Frame:
    """One event as Mastodon sends it: the stream it is on, its name, and its payload (a JSON text, or
    a status id for `delete`)."""

    stream: str
    event: str
    payload: str


def stream_reader(token: str | None) -> Reader:
    """The reader a bearer token names; 401 `token_required` without one, `invalid_token` for a token
    that is unknown, revoked or whose user is deactivated (every stream needs a token, as Mastodon's)."""
    if not token:
        raise Unauthorized("Missing access token", code="token_required")
    row = access_token_resolve(token)
    if row is None:
        raise Unauthorized("The access token is invalid", code="invalid_token")
    return Reader(user=row.user, scopes=row.scopes)


def stream_channel(path: str, tag: str | None) -> Channel:
    """The stream at `path` (after /api/v1/streaming/), with its `tag` query; 404 `unknown_stream`
    for a path that names none, 400 `tag_required` for a hashtag stream without its topic."""
    name = STREAM_PATHS.get(path.strip("/"))
    if name is None:
        raise NotFound("Unknown stream type", code="unknown_stream")
    if name.startswith("hashtag"):
        tag = (tag or "").strip().lstrip("#").strip("#")
        if not tag:
            raise ValidationFailed("A hashtag stream needs the tag parameter", code="tag_required")
        return Channel(name, tag)
    return Channel(name)


def stream_allowed(reader: Reader, channel: Channel) -> None:
    """Refuse a stream the reader may not open: the user streams need a user (422 `user_required`, as
    the REST API answers an application's own token), every stream needs its scope (403
    `insufficient_scope`)."""
    if not scopes_allow(reader.scopes, channel.needs):
        raise PermissionDenied(
            "This action is outside the authorized scopes",
            code="insufficient_scope",
            required_scopes=list(channel.needs),
        )
    if channel.name in USER_STREAMS and reader.user is None:
        raise ValidationFailed("This method requires an authenticated user", code="user_required")


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
    if kind == "post":
        return _post_frames(reader, channels, int(event["id"]), int(event["a"]), request)
    if kind == "delete":
        return _delete_frames(reader, channels, event)
    if kind == "notification" and event.get("r") == reader.user_id:
        return _notification_frames(reader, channels, event, request)
    return []


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
    reader: Reader, channels: list[Channel], post_id: int, author_id: int, request: HttpRequest
) -> list[Frame]:
    frames: list[Frame] = []
    viewer_id = reader.user_id
    hidden: frozenset[int] | None = None
    for channel in channels:
        if channel.name == "user" and viewer_id is not None:
            status = _home_status(viewer_id, post_id, author_id, request)
            if status is not None:
                frames.append(Frame(channel.name, "update", status))
            continue
        if channel.name in USER_STREAMS or "remote" in channel.name:
            continue  # notifications only; and every post here is local (Weituan does not federate)
        if hidden is None:
            hidden = frozenset(hidden_author_ids(viewer_id)) if viewer_id is not None else frozenset()
        if author_id in hidden:
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
                frames.append(Frame(channel.name, "update", status))
    return frames


def _delete_frames(reader: Reader, channels: list[Channel], event: Event) -> list[Frame]:
    """A deleted post's id, on the streams that may have shown it: the home of the author and of their
    followers, the public and topic streams for a public post; never across a block or a mute."""
    post_id, author_id = int(event["id"]), int(event["a"])
    viewer_id = reader.user_id
    if viewer_id is not None and author_id != viewer_id and author_id in hidden_author_ids(viewer_id):
        return []
    frames = []
    for channel in channels:
        if channel.name == "user":
            shown = viewer_id is not None and _follows(viewer_id, author_id)
        elif channel.name in USER_STREAMS or "remote" in channel.name:
            shown = False
        else:
            shown = event.get("v") == Visibility.PUBLIC
        if shown:
            frames.append(Frame(channel.name, "delete", str(post_id)))
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
    return [Frame(channel.name, "notification", payload) for channel in wanted]
