"""Tracking's ways in refuse a NUL character (U+0000) as the rest of the site does: /s/<code>, answered in
front of Django, hands such a click to Django and answers as it does, recording nothing; event
ingestion refuses a batch with one and stores none of it."""

import asyncio
import json
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from asgiref.testing import ApplicationCommunicator
from django.core.asgi import get_asgi_application
from django.db import connections
from django.test import Client

from weituan.asgi import application
from weituan.tracking import facade
from weituan.tracking.buffer import write_buffer
from weituan.tracking.queries import link_click_counts
from weituan.tracking.tests.conftest import count

BROWSER = b"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/130.0 Mobile Safari/537.36"


async def _call(app: Any, path: str, query: bytes) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
        "path": path, "raw_path": path.encode(), "query_string": query, "root_path": "",
        "headers": [(b"host", b"testserver"), (b"user-agent", BROWSER)], "client": ("192.0.2.44", 5000),
        "server": ("testserver", 80),
    }  # fmt: skip
    communicator = ApplicationCommunicator(app, scope)
    await communicator.send_input({"type": "http.request", "body": b"", "more_body": False})
    start = await communicator.receive_output(10)
    body = b""
    while True:
        message = await communicator.receive_output(10)
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    return start["status"], start["headers"], body


def get(app: Any, path: str, query: bytes = b"") -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    try:
        return asyncio.run(_call(app, path, query))
    finally:
        asyncio.run(sync_to_async(connections.close_all)())


def _comparable(answer: tuple[int, list[tuple[bytes, bytes]], bytes]) -> tuple[Any, ...]:
    """An answer without what differs on every request: the CSP nonce and the CSRF token and cookie."""
    status, headers, body = answer
    kept = [
        (name, value)
        for name, value in headers
        if name.lower() not in (b"content-security-policy", b"set-cookie")
    ]
    page = body.decode()
    for marker in ('nonce="', 'value="', '"X-CSRFToken": "'):
        parts = page.split(marker)
        page = marker.join([parts[0], *(part[part.index('"') :] for part in parts[1:])])
    return status, sorted(kept), page


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("where", "query"),
    [("code", b""), ("query string", b"utm_source=x%00"), ("query string, raw", b"utm_source=x\x00")],
)
def test_a_short_link_with_a_nul_is_refused_as_django_refuses_it(where: str, query: bytes) -> None:
    link = facade.short_link_for_share(sharer_id=1, post_id=3, target_url="https://weituan.example/d/3")
    path = f"/s/{link.code}\x00" if where == "code" else f"/s/{link.code}"
    assert get(application, f"/s/{link.code}")[0] == 302  # the link is known, and kept by the front path
    django = get_asgi_application()

    through_front = get(application, path, query)
    through_django = get(django, path, query)
    assert through_front[0] == 400
    assert "无法使用的字符" in through_front[2].decode()
    assert _comparable(through_front) == _comparable(through_django)
    write_buffer().flush()
    assert link_click_counts(link.id) == {"counted": 1}  # the first click only


@pytest.mark.django_db
def test_an_event_batch_with_a_nul_is_refused_and_nothing_stored(site_key: str) -> None:
    event = {"event": "pageview", "visitor_id": "v-nul-1", "url": "https://shop.example/a", "ts": None}
    for batch in (
        [{**event, "url": "https://shop.example/a\x00"}],
        [{**event, "props": {"colour\x00": "red"}}],
    ):
        response = Client().post(
            "/api/v1/events", json.dumps(batch), content_type="application/json", HTTP_X_API_KEY=site_key
        )
        assert response.status_code == 422
        assert response.json()["code"] == "invalid_characters"
    response = Client().post(
        "/collect", json.dumps({"url": "https://shop.example/\x00"}), content_type="text/plain"
    )
    assert response.status_code == 400
    write_buffer().flush()
    assert count("SELECT count() FROM events") == 0

    accepted = Client().post(
        "/api/v1/events", json.dumps([event]), content_type="application/json", HTTP_X_API_KEY=site_key
    )
    assert accepted.json()["accepted"] == 1
