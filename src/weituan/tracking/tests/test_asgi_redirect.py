"""/s/<code> as served in production: the ASGI fast path in front of Django."""

import asyncio
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from asgiref.testing import ApplicationCommunicator
from django.db import connections
from django.test import Client

from weituan.asgi import application
from weituan.tracking import facade
from weituan.tracking.buffer import write_buffer
from weituan.tracking.queries import link_click_counts, person_of

BROWSER = b"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/130.0 Mobile Safari/537.36"


async def call(
    path: str, *, method: str = "GET", headers: list[tuple[bytes, bytes]] | None = None
) -> dict[str, Any]:
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
        "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
        "headers": [(b"host", b"testserver"), *(headers or [])], "client": ("192.0.2.44", 5000),
        "server": ("testserver", 80),
    }  # fmt: skip
    app = ApplicationCommunicator(application, scope)
    await app.send_input({"type": "http.request", "body": b"", "more_body": False})
    start = await app.receive_output(10)
    body = await app.receive_output(10)
    while body.get("more_body"):
        body = await app.receive_output(10)
    return {"status": start["status"], "headers": dict(start["headers"])}


def get(path: str, **kwargs: Any) -> dict[str, Any]:
    try:
        return asyncio.run(call(path, **kwargs))
    finally:
        # Link lookups ran on asgiref's worker thread; its database connection must not outlive the test.
        asyncio.run(sync_to_async(connections.close_all)())


def share() -> Any:
    return facade.short_link_for_share(sharer_id=1, post_id=3, target_url="https://weituan.example/d/3")


@pytest.mark.django_db(transaction=True)
def test_fast_path_redirects_sets_cookie_and_records():
    link = share()
    answer = get(f"/s/{link.code}", headers=[(b"user-agent", BROWSER), (b"referer", b"https://t.co/x")])
    assert answer["status"] == 302
    assert answer["headers"][b"location"] == f"https://weituan.example/d/3?wt_s={link.code}".encode()
    cookie = answer["headers"][b"set-cookie"].decode()
    assert cookie.startswith("wt_vid=") and "Max-Age=63072000" in cookie and "SameSite=Lax" in cookie
    write_buffer().flush()
    assert link_click_counts(link.id) == {"counted": 1}


@pytest.mark.django_db(transaction=True)
def test_fast_path_filters_head_and_known_visitor_repeats():
    link = share()
    visitor = [(b"user-agent", BROWSER), (b"cookie", b"wt_vid=fastpathvisitor01")]
    assert get(f"/s/{link.code}", method="HEAD", headers=visitor)["status"] == 302
    for _ in range(2):
        answer = get(f"/s/{link.code}", headers=visitor)
        assert b"set-cookie" not in answer["headers"]  # the known visitor keeps its id
    write_buffer().flush()
    assert link_click_counts(link.id) == {"counted": 1, "duplicate": 1, "head": 1}


@pytest.mark.django_db(transaction=True)
def test_unknown_code_falls_through_to_the_404_page():
    assert get("/s/NoSuchCode")["status"] == 404
    write_buffer().flush()
    from weituan.tracking.tests.conftest import count

    assert count("SELECT count() FROM events") == 0


@pytest.mark.django_db(transaction=True)
def test_unknown_code_shows_its_page_to_a_signed_in_reader_in_their_language(shopper):
    """The 404 page carries the signed-in menu, whose session and user are read off the event loop."""
    client = Client()
    client.force_login(shopper)
    session = client.cookies["sessionid"].value
    answer = asyncio.run(
        call(
            "/s/NoSuchCode",
            headers=[(b"cookie", f"sessionid={session}".encode()), (b"accept-language", b"en")],
        )
    )
    asyncio.run(sync_to_async(connections.close_all)())
    assert answer["status"] == 404
    page = Client(headers={"accept-language": "en"})
    page.force_login(shopper)
    text = page.get("/s/NoSuchCode").content.decode()
    assert "<h1>This short link does not exist</h1>" in text
    assert 'id="logout"' in text and "短链接" not in text


@pytest.mark.django_db(transaction=True)
def test_signed_in_click_through_the_fast_path_links_visitor_and_user(shopper):
    link = share()
    client = Client()
    client.force_login(shopper)
    session = client.cookies["sessionid"].value
    cookie = f"sessionid={session}; wt_vid=signedinvisitor1".encode()
    answer = get(f"/s/{link.code}", headers=[(b"user-agent", BROWSER), (b"cookie", cookie)])
    assert answer["status"] == 302
    write_buffer().flush()
    assert person_of(visitor_id="signedinvisitor1") == f"u:{shopper.pk}"


@pytest.mark.django_db(transaction=True)
def test_fast_path_records_every_field_of_the_click_even_with_tabs_and_backslashes():
    from weituan.tracking.store import analytics_store

    link = facade.short_link_for_share(
        sharer_id=4, post_id=6, target_url="https://weituan.example/d/6", hop_depth=2
    )
    agent = b"Mozilla/5.0 (iPhone; CPU iPhone OS 17_0)\tMobile\\Safari"
    answer = get(f"/s/{link.code}", headers=[(b"user-agent", agent), (b"referer", b"https://weibo.com/a\\b"),
                                             (b"cookie", b"wt_vid=fieldsvisitor01")])  # fmt: skip
    assert answer["status"] == 302
    write_buffer().flush()
    (row,) = analytics_store().query(
        "SELECT event, link_id, visitor_id, user_id, url, referrer, referrer_domain, channel, medium, hop_depth,"
        " sharer_id, post_id, origin, device, user_agent, ip, is_bot, bot_reason, length(event_id) AS id_length,"
        " dateDiff('second', ts, now64(3)) AS age FROM events"
    )
    assert row.pop("age") < 60
    assert row == {
        "event": "link_click", "link_id": link.id, "visitor_id": "fieldsvisitor01", "user_id": 0,
        "url": "https://weituan.example/d/6", "referrer": "https://weibo.com/a\\b", "referrer_domain": "weibo.com",
        "channel": "microblog", "medium": "repost", "hop_depth": 2, "sharer_id": 4, "post_id": 6, "origin": "click",
        "device": "mobile", "user_agent": agent.decode(), "ip": "192.0.2.0", "is_bot": 0, "bot_reason": "",
        "id_length": 32,
    }  # fmt: skip


def spooled_lines() -> list[bytes]:
    """Take the lines waiting in the process's click spool, without storing them."""
    taken: list[bytes] = []
    spool = write_buffer().clicks
    assert spool is not None
    spool.drain(
        lambda lines, _: taken.extend(lines),
        max_lines=1000,
        text_sink=lambda text, _: taken.extend(text.split(b"\n")[:-1]),
    )
    return taken


@pytest.mark.django_db(transaction=True)
def test_the_fast_path_writes_the_line_click_line_builds():
    from weituan.tracking.links_cache import link_resolve
    from weituan.tracking.services.events import click_line
    from weituan.tracking.services.ingest import ingest_memory_clear
    from weituan.tracking.spool import CLICK_COLUMNS

    link = facade.short_link_for_share(
        sharer_id=2, post_id=8, target_url="https://weituan.example/d/8", hop_depth=1
    )
    agent = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0)\tMobile\\Safari"
    referrer = "https://weibo.com/a\\b"
    cases = [
        ("GET", [], "linevisitor01"),
        ("HEAD", [], "linevisitor02"),
        ("GET", [(b"sec-purpose", b"prefetch")], "linevisitor03"),
    ]
    for method, extra, visitor in cases:
        write_buffer().flush()
        headers = [(b"user-agent", agent.encode()), (b"referer", referrer.encode()),
                   (b"cookie", f"wt_vid={visitor}".encode()), *extra]  # fmt: skip
        assert get(f"/s/{link.code}", method=method, headers=headers)["status"] == 302
        (fast,) = spooled_lines()
        fields = dict(zip(CLICK_COLUMNS, fast.decode().split("\t"), strict=True))
        seconds, _, millis = fields["ts"].partition(".")
        assert seconds.isdigit() and len(millis) == 3 and millis.isdigit()
        assert len(fields["event_id"]) == 32
        ingest_memory_clear()  # the same click again, as the view path would record it
        resolved = link_resolve(link.code)
        assert resolved is not None
        expected = click_line(
            resolved, visitor, None, referrer, agent, "192.0.2.44", method,
            {name.decode(): value.decode() for name, value in extra}, float(fields["ts"]) + 0.0004,
        )  # fmt: skip
        wanted = dict(zip(CLICK_COLUMNS, expected.rstrip("\n").split("\t"), strict=True))
        assert {**fields, "event_id": ""} == {**wanted, "event_id": ""}
    assert (fields["is_bot"], fields["bot_reason"]) == ("1", "prefetch")  # the last case


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("cookie", "kept"),
    [
        (b"wt_vid=plainvisitor01", "plainvisitor01"),
        (b"wt_vid= spacedvisitor02 ", "spacedvisitor02"),  # read as Django reads it: stripped
        (b"wt_vid=dash-visitor_03", "dash-visitor_03"),
        (b'wt_vid="quotedvisitor04"', "quotedvisitor04"),
        (b"theme=dark; wt_vid=pairedvisitor05", "pairedvisitor05"),
        (b"theme=dark", None),
        (b"wt_vid=short", None),
        (b"wt_vid=tab\tvisitor06", None),
        (b"wt_vid=caf\xe9visitor07", "caf\xe9visitor07"),  # a letter of ISO-8859-1, as before
        (None, None),
    ],
)
def test_the_visitor_cookie_is_kept_when_valid_and_replaced_otherwise(cookie: bytes | None, kept: str | None):
    from weituan.tracking.spool import CLICK_COLUMNS

    link = share()
    write_buffer().flush()
    headers = [(b"user-agent", BROWSER)] + ([(b"cookie", cookie)] if cookie is not None else [])
    answer = get(f"/s/{link.code}", headers=headers)
    assert answer["status"] == 302
    (line,) = spooled_lines()
    visitor = dict(zip(CLICK_COLUMNS, line.decode().split("\t"), strict=True))["visitor_id"]
    if kept is not None:
        assert b"set-cookie" not in answer["headers"]
        assert visitor == kept
    else:
        set_cookie = answer["headers"][b"set-cookie"].decode()
        new_id = set_cookie.split(";", 1)[0].removeprefix("wt_vid=")
        assert len(new_id) == 32 and int(new_id, 16) >= 0
        assert visitor == new_id


@pytest.mark.django_db(transaction=True)
def test_a_prepared_redirect_serves_its_path_until_it_expires():
    from django.core.cache import cache

    from weituan.tracking.links_cache import local_links
    from weituan.tracking.models import ShortLink

    link = share()
    target = f"https://weituan.example/d/3?wt_s={link.code}".encode()
    assert get(f"/s/{link.code}")["headers"][b"location"] == target
    assert get(f"/s/{link.code}/")["headers"][b"location"] == target  # the trailing slash too
    prepared = local_links.redirects[f"/s/{link.code}"]
    assert local_links.redirects[f"/s/{link.code}/"].link == prepared.link
    ShortLink.objects.filter(code=link.code).delete()
    cache.delete(f"tracking:link:{link.code}")
    local_links.entries.clear()
    assert get(f"/s/{link.code}")["status"] == 302  # links never change: the prepared one still serves
    write_buffer().flush()
    prepared.expires = 0.0
    assert get(f"/s/{link.code}")["status"] == 404  # looked up again, and gone
    assert f"/s/{link.code}" in local_links.redirects  # the slash path still holds its own
    write_buffer().flush()
    assert link_click_counts(link.id) == {"no_user_agent": 3}  # the three redirects, not the 404
