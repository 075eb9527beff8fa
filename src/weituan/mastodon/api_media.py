"""Mastodon API: media — uploading an image (v1 and v2, both processed at once), reading and describing it."""

from typing import Any

from django.http import HttpRequest
from ninja import Router

from weituan.accounts.auth import request_user
from weituan.core.errors import ValidationFailed
from weituan.mastodon.api_statuses import write_limit
from weituan.mastodon.endpoint_auth import WRITE_MEDIA
from weituan.mastodon.request_params import focus_param, mastodon_params
from weituan.mastodon.serializers_statuses import media_json
from weituan.microblog.queries.posts import media_get_for_owner
from weituan.microblog.services.media import media_update, media_upload

router = Router(tags=["mastodon:media"])
router_v2 = Router(tags=["mastodon:v2"])


def _upload(request: HttpRequest) -> dict[str, Any]:
    user = request_user(request)
    write_limit(user)
    params = mastodon_params(request)
    upload = params.file("file")
    if upload is None:
        raise ValidationFailed("Attach the image as the multipart field 'file'", code="invalid_image")
    media = media_upload(
        owner=user,
        upload=upload,
        description=params.text("description") or "",
        focus=focus_param(params.text("focus")),
    )
    return media_json(media, request)


@router.post("/media", auth=WRITE_MEDIA, summary="Upload an image (v1)")
def media_post_v1(request: HttpRequest) -> dict[str, Any]:
    return _upload(request)


@router_v2.post("/media", auth=WRITE_MEDIA, summary="Upload an image (v2; processed at once, so url is set)")
def media_post_v2(request: HttpRequest) -> dict[str, Any]:
    return _upload(request)


@router.get("/media/{id:media_id}", auth=WRITE_MEDIA, summary="One of your uploads")
def media_get(request: HttpRequest, media_id: int) -> dict[str, Any]:
    return media_json(media_get_for_owner(request_user(request), media_id), request)


@router.put(
    "/media/{id:media_id}", auth=WRITE_MEDIA, summary="Describe one of your uploads, or move its focal point"
)
def media_put(request: HttpRequest, media_id: int) -> dict[str, Any]:
    user = request_user(request)
    write_limit(user)
    params = mastodon_params(request)
    media = media_update(
        owner=user,
        media_id=media_id,
        description=params.text("description"),
        focus=focus_param(params.text("focus")),
    )
    return media_json(media, request)
