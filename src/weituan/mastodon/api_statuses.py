"""Mastodon API: statuses — post (an original, a comment through in_reply_to_id, a repost with comment
through quoted_status_id), read (one, or several by id[]), delete, context, reblog, favourite,
bookmark, pin, who reblogged or favourited, and the caller's favourites and bookmarks.

Writes are rate-limited per user; POST /statuses honours the Idempotency-Key header.
"""

import hashlib
import json
from collections.abc import Callable
from functools import partial
from typing import Any

from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from ninja import Router

from weituan.accounts.auth import request_user
from weituan.accounts.models import QuotePolicy
from weituan.core.errors import NotFound, ServiceError, ValidationFailed
from weituan.core.ids import MAX_ID
from weituan.core.ratelimit import user_writes_hit
from weituan.core.redis import redis_enabled
from weituan.core.sqlite_writer import sqlite_writer
from weituan.mastodon.endpoint_auth import (
    READ_ACCOUNTS,
    READ_BOOKMARKS,
    READ_FAVOURITES,
    READ_STATUSES,
    WRITE_ACCOUNTS,
    WRITE_BOOKMARKS,
    WRITE_FAVOURITES,
    WRITE_STATUSES,
)
from weituan.mastodon.pagination import PAGE_QUERY, page_params_from_request, set_link_header
from weituan.mastodon.request_params import (
    ID_LIST,
    ID_TEXT,
    TEXT,
    MastodonParams,
    focus_param,
    list_values,
    mastodon_params,
    params_documented,
    query_documented,
)
from weituan.mastodon.serializers_accounts import accounts_json
from weituan.mastodon.serializers_statuses import (
    deleted_status_json,
    status_edits_json,
    status_json,
    statuses_json,
)
from weituan.mastodon.status_filters import status_filtered_for, statuses_filtered
from weituan.microblog.models import FilterContext, PostEdit, PostKind, Visibility
from weituan.microblog.queries.bookmarks import bookmarked_posts_page
from weituan.microblog.queries.filters import reader_filters
from weituan.microblog.queries.likes import liked_posts_page
from weituan.microblog.queries.posts import PostView, post_context, post_view_for_user, posts_hydrate
from weituan.microblog.queries.reposts import liked_by, quotes_of, reposted_by
from weituan.microblog.queries.visibility import visible_post_ids
from weituan.microblog.services.edit_media import MediaAttributes
from weituan.microblog.services.edits import post_edit
from weituan.microblog.services.interactions import (
    bookmark_add,
    bookmark_remove,
    comment_create,
    like_add,
    like_remove,
)
from weituan.microblog.services.pins import pin_add, pin_remove
from weituan.microblog.services.posts import (
    PublishedPost,
    idempotent_write,
    post_delete,
    post_draft,
    post_draft_publish,
    repost_create,
    repost_undo,
)
from weituan.microblog.services.quotes import quote_policy_set, quote_revoke

router = Router(tags=["mastodon:statuses"])

# What a status may be: Mastodon's visibilities but `direct` (refused: no direct messages here).
_VISIBILITY = {"type": "string", "enum": [choice.value for choice in Visibility]}
_QUOTE_POLICY = {"type": "string", "enum": [choice.value for choice in QuotePolicy]}
STATUS_PARAMETERS = params_documented(
    {
        "status": TEXT,
        "media_ids": {"type": "array", "items": ID_TEXT},
        "in_reply_to_id": ID_TEXT,
        "quoted_status_id": ID_TEXT,
        "visibility": _VISIBILITY,
        "language": TEXT,
        "quote_approval_policy": _QUOTE_POLICY,
    }
)
REBLOG_PARAMETERS = params_documented({"visibility": _VISIBILITY})
EDIT_PARAMETERS = params_documented(
    {
        "status": TEXT,
        "media_ids": {"type": "array", "items": ID_TEXT},
        "media_attributes": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"id": ID_TEXT, "description": TEXT, "focus": TEXT},
                "required": ["id"],
            },
        },
    },
    required=("status",),
)

# Mastodon's bound on GET /statuses?id[]=..., beyond which it answers 422.
MAX_STATUSES_ASKED = 20


def write_limit(user: Any) -> None:
    """Count one write of `user` against the per-minute write limit (RateLimited beyond it)."""
    user_writes_hit(user)


def _id_param(params: MastodonParams, name: str) -> int | None:
    raw = params.text(name)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise ValidationFailed(f"{name} must be a status id", code="invalid_id") from None


def _media_ids(params: MastodonParams) -> list[int]:
    raw = params.values.get("media_ids") or []
    if not isinstance(raw, list):
        raw = [raw]
    try:
        ids = [int(str(item)) for item in raw if str(item) != ""]
    except ValueError:
        raise ValidationFailed("media_ids must be media attachment ids", code="invalid_media") from None
    if any(not 0 < media_id <= MAX_ID for media_id in ids):
        raise ValidationFailed("media_ids must be media attachment ids", code="invalid_media")
    return ids


def _visibility(params: MastodonParams, user: Any) -> str:
    """The visibility asked for, else the author's default (`source[privacy]`), as Mastodon does for
    a status or a reblog that names none."""
    visibility = params.text("visibility") or user.default_privacy or Visibility.PUBLIC
    if visibility == "direct":
        raise ValidationFailed("Direct messages are not supported", code="invalid_visibility")
    return visibility


def _status_write(user: Any, params: MastodonParams) -> Callable[[], PublishedPost | int]:
    """The write the parameters ask for, checked and made ready without touching the database: run, it
    writes the original post (returning it with what its Status shows), or the comment or quote
    (returning its id). An original post is drafted here (`post_draft`), so that the write holds
    SQLite's write lock only for its statements."""
    text = params.text("status") or ""
    media_ids = _media_ids(params)
    in_reply_to_id = _id_param(params, "in_reply_to_id")
    quoted_id = _id_param(params, "quoted_status_id")
    if params.values.get("poll"):
        raise ValidationFailed("Polls are not supported", code="polls_unsupported")
    if params.values.get("scheduled_at"):
        # Publishing now what was meant for later would be worse than refusing it.
        raise ValidationFailed("Scheduled statuses are not supported", code="scheduling_unsupported")
    if (params.text("spoiler_text") or "").strip() or params.flag("sensitive"):
        # A post meant to be read behind a warning (or with its media hidden) must not go out bare.
        raise ValidationFailed(
            "Content warnings and sensitive media are not supported", code="content_warnings_unsupported"
        )
    if in_reply_to_id is not None and quoted_id is not None:
        raise ValidationFailed("A status cannot both reply and quote", code="invalid")
    if in_reply_to_id is not None:
        reply_to = in_reply_to_id  # as narrowed here: a closure sees the name as declared
        return lambda: comment_create(author=user, post_id=reply_to, text=text, media_ids=media_ids).id
    visibility = _visibility(params, user)
    quote_policy = params.text("quote_approval_policy") or None
    if quoted_id is not None:
        if media_ids:
            raise ValidationFailed("A quote cannot carry media", code="invalid_media")
        if not text.strip():
            raise ValidationFailed("A quote needs words of its own", code="empty_post")
        quoted = quoted_id  # as narrowed here, as above
        return lambda: (
            repost_create(
                reposter=user, post_id=quoted, comment=text, visibility=visibility, quote_policy=quote_policy
            ).id
        )
    # Without a language the post gets the author's default (`source[language]`, see posting_language).
    language = params.text("language") or user.posting_language
    draft = post_draft(
        author=user,
        text=text,
        media_ids=media_ids,
        visibility=visibility,
        language=language,
        quote_policy=quote_policy,
    )
    return partial(post_draft_publish, draft)


def _written_id(written: PublishedPost | int) -> int:
    return written.post.id if isinstance(written, PublishedPost) else written


def _request_hash(params: MastodonParams) -> str:
    wanted = (
        "status",
        "media_ids",
        "in_reply_to_id",
        "quoted_status_id",
        "quote_approval_policy",
        "visibility",
        "language",
        "poll",
    )
    body = {name: params.values.get(name) for name in wanted}
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


def _status_response(request: HttpRequest, post_id: int) -> dict[str, Any]:
    """The status as the caller sees it, with `filtered` by their filters of threads (a status read on
    its own, as Mastodon's GET /statuses/:id uses)."""
    user = request_user(request)
    return status_filtered_for(
        user, FilterContext.THREAD, status_json(post_view_for_user(user, post_id), request)
    )


def published_view(published: PublishedPost, author: Any) -> PostView:
    """The view of a post just published by `author`, as `posts_hydrate` would read it back for them
    (nobody can have liked or reposted it yet)."""
    post = published.post
    post._state.fields_cache.update(author=author, parent=None, root=None)
    return PostView(
        post=post,
        author=author,
        author_counts=published.author_counts,
        mentions=list(published.mentioned),
        topics=list(published.topics),
    )


def _counted_write(user: Any, write: Callable[[], Any]) -> Any:
    """Count one write of `user` against the limit, then run `write`.

    With the limit counted in the database (no Redis), both happen in one transaction, so a post takes
    the write lock once; a refusal (the limit itself, or a refused write, whose own savepoint is rolled
    back) still commits the count, as a count made on its own would be. On SQLite the transaction
    queues for the write lock (`sqlite_writer`).
    """
    if redis_enabled():
        write_limit(user)
        with sqlite_writer():
            return write()
    refused: ServiceError | None = None
    with sqlite_writer(), transaction.atomic():
        try:
            write_limit(user)
            written = write()
        except ServiceError as exc:
            refused = exc
    if refused is not None:
        raise refused
    return written


def status_post_answer(request: HttpRequest, user: Any) -> dict[str, Any]:
    """POST /statuses for `user`: the write, counted against the limit, and the Status made (or, for a
    retried Idempotency-Key, the one made first). The request is read and checked before the write
    waits its turn; whatever refuses it then is raised where the write would have run, so that it is
    counted (or not) as a refused write is, after the limit's own refusal."""
    key = request.headers.get("Idempotency-Key")
    refused: Exception | None = None
    try:
        params = mastodon_params(request)
        planned = _status_write(user, params)
    except Exception as exc:
        refused = exc
    if refused is not None and redis_enabled():
        write_limit(user)  # counted in Redis: nothing to write, so no turn at the write lock
        raise refused

    def write() -> PublishedPost | int:
        if refused is not None:
            raise refused
        if not key:
            return planned()
        made: list[PublishedPost | int] = []

        def first_write() -> int:
            made.append(planned())
            return _written_id(made[0])

        post_id, replayed = idempotent_write(
            scope=f"statuses:user:{user.pk}", key=key, request_hash=_request_hash(params), write=first_write
        )
        return post_id if replayed else made[0]

    written = _counted_write(user, write)
    if isinstance(written, PublishedPost) and not written.with_media:
        return status_json(published_view(written, user), request)
    return status_json(post_view_for_user(user, _written_id(written)), request)


@router.post(
    "/statuses",
    auth=WRITE_STATUSES,
    openapi_extra=STATUS_PARAMETERS,
    summary="Post a status, a comment (in_reply_to_id) or a quote",
)
def status_post(request: HttpRequest) -> dict[str, Any]:
    return status_post_answer(request, request_user(request))


@router.get(
    "/statuses",
    openapi_extra=query_documented({"id[]": ID_LIST}),
    auth=READ_STATUSES,
    summary="Several statuses at once (id[])",
)
def statuses_many(request: HttpRequest) -> list[dict[str, Any]]:
    """The statuses named by `id[]` that the caller may see, in the order asked; ids that name nothing
    the caller may see are left out, as Mastodon does. At most `MAX_STATUSES_ASKED` ids."""
    raw = list_values(request, "id")
    if len(raw) > MAX_STATUSES_ASKED:
        raise ValidationFailed(
            f"At most {MAX_STATUSES_ASKED} statuses can be asked for at once", code="too_many_ids"
        )
    try:
        asked = [int(item) for item in raw]
    except ValueError:
        raise ValidationFailed("id[] must be status ids", code="invalid_id") from None
    viewer = request_user(request)
    ids = visible_post_ids(viewer, [status_id for status_id in asked if 0 < status_id <= MAX_ID])
    filters = reader_filters(viewer.pk if viewer is not None else None, FilterContext.THREAD)
    # Each asked for by id, so none is left out for a hiding filter: `filtered` tells the client.
    return statuses_filtered(statuses_json(posts_hydrate(ids, viewer), request), filters, leave_out=False)


@router.get("/statuses/{id:status_id}", auth=READ_STATUSES, summary="A status")
def status_get(request: HttpRequest, status_id: int) -> dict[str, Any]:
    return _status_response(request, status_id)


@router.delete("/statuses/{id:status_id}", auth=WRITE_STATUSES, summary="Delete a status")
def status_delete(request: HttpRequest, status_id: int) -> dict[str, Any]:
    user = request_user(request)
    write_limit(user)
    post_delete(actor=user, post_id=status_id)
    view = posts_hydrate([status_id], user, include_deleted=True)[0]
    return deleted_status_json(view, request)


@router.put(
    "/statuses/{id:status_id}",
    auth=WRITE_STATUSES,
    openapi_extra=EDIT_PARAMETERS,
    summary="Edit a status's words and images",
)
def status_edit(request: HttpRequest, status_id: int) -> dict[str, Any]:
    """The words change (`status`); with `media_ids` the images become those, in that order (uploads of
    the caller's that no other post carries may join; left out, the images stay), and
    `media_attributes` change their descriptions and focal points. Visibility and language stay as
    published. A refused request changes nothing."""
    user = request_user(request)
    write_limit(user)
    params = mastodon_params(request)
    text = params.text("status")
    if text is None:
        raise ValidationFailed("status is required", code="invalid_status")
    media_ids = _media_ids(params) if params.values.get("media_ids") is not None else None
    post_edit(
        editor=user,
        post_id=status_id,
        text=text,
        media_ids=media_ids,
        media_attributes=_media_attributes(params),
    )
    return _status_response(request, status_id)


def _media_attributes(params: MastodonParams) -> list[MediaAttributes]:
    """`media_attributes[][id]`, `[description]` and `[focus]` ("x,y") of an edit, in order."""
    found = []
    for item in params.objects("media_attributes") or []:
        media_id = _media_ids(MastodonParams(values={"media_ids": [item.get("id")]}))
        if len(media_id) != 1:
            raise ValidationFailed("media_attributes[][id] must name an image", code="invalid_media")
        if item.get("thumbnail") is not None:
            raise ValidationFailed("Custom thumbnails are not supported", code="thumbnails_unsupported")
        description = item.get("description")
        if isinstance(description, (dict, list, bool)):
            raise ValidationFailed("media_attributes[][description] must be text", code="invalid_media")
        found.append(
            MediaAttributes(
                media_id=media_id[0],
                description=None if description is None else str(description),
                focus=focus_param(item.get("focus")),
            )
        )
    return found


@router.get("/statuses/{id:status_id}/history", auth=READ_STATUSES, summary="The versions of a status")
def status_history(request: HttpRequest, status_id: int) -> list[dict[str, Any]]:
    view = post_view_for_user(request_user(request), status_id)
    edits = list(PostEdit.objects.filter(post_id=status_id).order_by("id"))
    return status_edits_json(view, edits, request)


@router.get("/statuses/{id:status_id}/source", auth=READ_STATUSES, summary="What the author wrote, to edit")
def status_source(request: HttpRequest, status_id: int) -> dict[str, Any]:
    user = request_user(request)
    view = post_view_for_user(user, status_id)
    if user is None or view.author.pk != user.pk:
        raise NotFound("Record not found")
    post = view.post
    text = post.comment if post.kind == PostKind.REPOST else post.text
    return {"id": str(post.id), "text": text, "spoiler_text": ""}


@router.get("/statuses/{id:status_id}/context", auth=READ_STATUSES, summary="Comments around a status")
def status_context(request: HttpRequest, status_id: int) -> dict[str, Any]:
    viewer = request_user(request)
    context = post_context(viewer, status_id)
    filters = reader_filters(viewer.pk if viewer is not None else None, FilterContext.THREAD)
    return {
        "ancestors": statuses_filtered(statuses_json(context.ancestors, request), filters),
        "descendants": statuses_filtered(statuses_json(context.descendants, request), filters),
    }


@router.post(
    "/statuses/{id:status_id}/reblog",
    auth=WRITE_STATUSES,
    openapi_extra=REBLOG_PARAMETERS,
    summary="Repost (a plain Weibo forward)",
)
def status_reblog(request: HttpRequest, status_id: int) -> dict[str, Any]:
    user = request_user(request)
    write_limit(user)
    params = mastodon_params(request)
    repost = repost_create(
        reposter=user, post_id=status_id, visibility=_visibility(params, user), reuse_plain=True
    )
    return _status_response(request, repost.id)


@router.post("/statuses/{id:status_id}/unreblog", auth=WRITE_STATUSES, summary="Undo a plain repost")
def status_unreblog(request: HttpRequest, status_id: int) -> dict[str, Any]:
    user = request_user(request)
    write_limit(user)
    repost_undo(reposter=user, post_id=status_id)
    return _status_response(request, status_id)


def _acted_on(request: HttpRequest, status_id: int, action: Callable[..., Any]) -> dict[str, Any]:
    """Count one write of the caller, do `action` (a like, a bookmark, a pin or their undoing) on the
    status, and answer the status as the caller now sees it."""
    user = request_user(request)
    write_limit(user)
    action(user=user, post_id=status_id)
    return _status_response(request, status_id)


@router.post("/statuses/{id:status_id}/favourite", auth=WRITE_FAVOURITES, summary="Like")
def status_favourite(request: HttpRequest, status_id: int) -> dict[str, Any]:
    return _acted_on(request, status_id, like_add)


@router.post("/statuses/{id:status_id}/unfavourite", auth=WRITE_FAVOURITES, summary="Take a like back")
def status_unfavourite(request: HttpRequest, status_id: int) -> dict[str, Any]:
    return _acted_on(request, status_id, like_remove)


@router.post("/statuses/{id:status_id}/bookmark", auth=WRITE_BOOKMARKS, summary="Keep a status (收藏)")
def status_bookmark(request: HttpRequest, status_id: int) -> dict[str, Any]:
    return _acted_on(request, status_id, bookmark_add)


@router.post("/statuses/{id:status_id}/unbookmark", auth=WRITE_BOOKMARKS, summary="Stop keeping a status")
def status_unbookmark(request: HttpRequest, status_id: int) -> dict[str, Any]:
    return _acted_on(request, status_id, bookmark_remove)


@router.post("/statuses/{id:status_id}/pin", auth=WRITE_ACCOUNTS, summary="Pin one of your statuses (置顶)")
def status_pin(request: HttpRequest, status_id: int) -> dict[str, Any]:
    return _acted_on(request, status_id, pin_add)


@router.post("/statuses/{id:status_id}/unpin", auth=WRITE_ACCOUNTS, summary="Unpin one of your statuses")
def status_unpin(request: HttpRequest, status_id: int) -> dict[str, Any]:
    return _acted_on(request, status_id, pin_remove)


def _statuses_page(request: HttpRequest, user: Any, rows: list[Any]) -> HttpResponse:
    """The statuses of a page of the caller's own rows (likes, bookmarks), with the rows' Link header."""
    response = JsonResponse(
        statuses_json(posts_hydrate([row.post_id for row in rows], user), request), safe=False
    )
    set_link_header(response, request, [row.cursor for row in rows])
    return response


def _accounts_page(request: HttpRequest, rows: list[Any]) -> HttpResponse:
    response = JsonResponse(accounts_json([row.user for row in rows], request), safe=False)
    set_link_header(response, request, [row.cursor for row in rows])
    return response


@router.get(
    "/statuses/{id:status_id}/reblogged_by",
    openapi_extra=PAGE_QUERY,
    auth=READ_ACCOUNTS,
    summary="Who reposted",
)
def status_reblogged_by(request: HttpRequest, status_id: int) -> HttpResponse:
    page = page_params_from_request(request, default_limit=40, max_limit=80)
    rows = reposted_by(request_user(request), status_id, **page.bounds())
    return _accounts_page(request, rows)


@router.get(
    "/statuses/{id:status_id}/favourited_by",
    openapi_extra=PAGE_QUERY,
    auth=READ_ACCOUNTS,
    summary="Who liked",
)
def status_favourited_by(request: HttpRequest, status_id: int) -> HttpResponse:
    page = page_params_from_request(request, default_limit=40, max_limit=80)
    rows = liked_by(request_user(request), status_id, **page.bounds())
    return _accounts_page(request, rows)


@router.get(
    "/favourites",
    openapi_extra=PAGE_QUERY,
    auth=READ_FAVOURITES,
    summary="The statuses the caller liked, newest like first",
)
def favourites(request: HttpRequest) -> HttpResponse:
    """Paged by the likes' ids (the Link header carries them), as Mastodon pages by its favourites'."""
    user = request_user(request)
    page = page_params_from_request(request, default_limit=20, max_limit=40)
    return _statuses_page(request, user, liked_posts_page(user, **page.bounds()))


@router.get(
    "/bookmarks",
    openapi_extra=PAGE_QUERY,
    auth=READ_BOOKMARKS,
    summary="The statuses the caller keeps, newest bookmark first",
)
def bookmarks(request: HttpRequest) -> HttpResponse:
    """Paged by the bookmarks' ids (the Link header carries them), as Mastodon pages its bookmarks."""
    user = request_user(request)
    page = page_params_from_request(request, default_limit=20, max_limit=40)
    return _statuses_page(request, user, bookmarked_posts_page(user, **page.bounds()))


@router.put(
    "/statuses/{id:status_id}/interaction_policy",
    auth=WRITE_STATUSES,
    openapi_extra=params_documented(
        {"quote_approval_policy": _QUOTE_POLICY}, required=("quote_approval_policy",)
    ),
    summary="Change who may quote one of your statuses (quote_approval_policy)",
)
def status_interaction_policy(request: HttpRequest, status_id: int) -> dict[str, Any]:
    user = request_user(request)
    write_limit(user)
    policy = mastodon_params(request).text("quote_approval_policy")
    if not policy:
        raise ValidationFailed("quote_approval_policy is required", code="invalid_quote_policy")
    quote_policy_set(actor=user, post_id=status_id, policy=policy)
    return _status_response(request, status_id)


@router.get(
    "/statuses/{id:status_id}/quotes",
    openapi_extra=PAGE_QUERY,
    auth=READ_STATUSES,
    summary="The statuses quoting a status",
)
def status_quotes(request: HttpRequest, status_id: int) -> HttpResponse:
    page = page_params_from_request(request, default_limit=20, max_limit=40)
    views = quotes_of(request_user(request), status_id, **page.bounds())
    return statuses_page_response(request, views)


def statuses_page_response(request: HttpRequest, views: list[PostView]) -> HttpResponse:
    """A page of statuses, with the Link header to the pages around it."""
    response = JsonResponse(statuses_json(views, request), safe=False)
    set_link_header(response, request, [view.id for view in views])
    return response


@router.post(
    "/statuses/{id:status_id}/quotes/{id:quoting_status_id}/revoke",
    auth=WRITE_STATUSES,
    summary="Take back a quote of one of your statuses",
)
def status_quote_revoke(request: HttpRequest, status_id: int, quoting_status_id: int) -> dict[str, Any]:
    user = request_user(request)
    write_limit(user)
    quote = quote_revoke(actor=user, post_id=status_id, quoting_id=quoting_status_id)
    # The quote as it now stands, even to a quoted author who blocked its author.
    return status_json(posts_hydrate([quote.id], user)[0], request)
