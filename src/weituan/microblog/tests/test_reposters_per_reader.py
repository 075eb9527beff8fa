"""Who reposted a post, through the API and on the post's page: a followers-only repost is listed to
its author and their followers only, as the repost tree shows it; public and unlisted ones to all."""

import re
from typing import Any

import pytest
from django.test import Client

from weituan.core.testing import make_user
from weituan.microblog.models import Visibility
from weituan.microblog.services.posts import post_create, repost_create
from weituan.microblog.services.relations import follow_create

pytestmark = pytest.mark.django_db


def _world() -> dict[str, Any]:
    people = {name: make_user(name) for name in ("dumpling_shop", "quiet", "loud", "fan", "stranger")}
    follow_create(follower=people["fan"], followee_id=people["quiet"].pk)
    original = post_create(author=people["dumpling_shop"], text="水饺第二份半价")
    repost_create(reposter=people["loud"], post_id=original.id, visibility=Visibility.UNLISTED)
    quiet = repost_create(
        reposter=people["quiet"], post_id=original.id, comment="只给粉丝看", visibility=Visibility.PRIVATE
    )
    return {**people, "original": original, "quiet_repost": quiet}


def _api_reposters(client: Client, post_id: int) -> list[str]:
    response = client.get(f"/api/v1/statuses/{post_id}/reblogged_by")
    assert response.status_code == 200
    return [account["username"] for account in response.json()]


def _page_reposters(client: Client, post_id: int) -> list[str]:
    body = client.get(f"/p/{post_id}").content.decode()
    section = body[body.index('id="reposts-section"') :]
    return re.findall(r'<a href="/@(\w+)"', section[: section.index("</section>")])


def test_a_followers_only_repost_is_listed_to_its_author_and_their_followers_only(api_as):
    world = _world()
    post_id = world["original"].id
    for reader, expected in (
        ("quiet", ["quiet", "loud"]),
        ("fan", ["quiet", "loud"]),
        ("stranger", ["loud"]),
        ("dumpling_shop", ["loud"]),
    ):
        assert _api_reposters(api_as(world[reader]), post_id) == expected, reader
        browser = Client()
        browser.force_login(world[reader])
        assert _page_reposters(browser, post_id) == expected, reader
    assert _api_reposters(Client(), post_id) == ["loud"]
    page = Client().get(f"/p/{post_id}").content.decode()
    assert f'href="/p/{world["quiet_repost"].id}"' not in page
    assert _page_reposters(Client(), post_id) == ["loud"]
