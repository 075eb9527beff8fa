"""The streaming API against a live ASGI server: what a reader's streams get as others post, like,
mention and delete, and what they never get."""

import queue
import time
from typing import Any

import httpx
import orjson
import pytest

from weituan.accounts.tokens import access_token_issue, access_token_revoke
from weituan.core.testing import make_user
from weituan.mastodon.tests.streaming_client import (
    EventReader,
    Served,
    asgi_server,
    filter_made,
    json_of,
    person,
    relate,
    retried,
)

pytestmark = pytest.mark.django_db(transaction=True)


def _stream(served: Served, path: str, token: str | None, **params: str) -> EventReader:
    return EventReader(f"{served.url}/api/v1/streaming/{path}", token, **params)


def test_health_answers_ok(served: Served) -> None:
    response = httpx.get(f"{served.url}/api/v1/streaming/health")
    assert (response.status_code, response.text) == (200, "OK")


def test_a_followed_post_arrives_as_the_home_timeline_renders_it(served: Served) -> None:
    _, reader_token, reader = person("reader")
    author, _, writer = person("writer")
    stranger_user, _, stranger = person("stranger")
    json_of(reader.post(f"{served.url}/api/v1/accounts/{author.pk}/follow"))
    stream = _stream(served, "user", reader_token)
    try:
        assert stream.status == 200
        json_of(stranger.post(f"{served.url}/api/v1/statuses", json={"status": "不相干的人"}))
        posted = json_of(writer.post(f"{served.url}/api/v1/statuses", json={"status": "今晚 #团购# 开抢"}))
        name, data = stream.next()
        home = json_of(reader.get(f"{served.url}/api/v1/timelines/home"))
        assert name == "update"
        assert orjson.loads(data) == home[0]
        assert home[0]["id"] == posted["id"]
        # Followers-only posts reach followers.
        private = json_of(
            writer.post(f"{served.url}/api/v1/statuses", json={"status": "仅粉丝", "visibility": "private"})
        )
        name, data = stream.next()
        assert (name, orjson.loads(data)["id"]) == ("update", private["id"])
        # A delete tells the followers' streams which post went.
        json_of(writer.delete(f"{served.url}/api/v1/statuses/{posted['id']}"))
        assert stream.next() == ("delete", posted["id"])
        assert stranger_user.pk  # the stranger's post never came: the first event was the followed one's
    finally:
        stream.close()


def test_likes_and_mentions_are_notifications(served: Served) -> None:
    reader_user, reader_token, reader = person("reader")
    _, _, fan = person("fan")
    stream = _stream(served, "user/notification", reader_token)
    try:
        own = json_of(reader.post(f"{served.url}/api/v1/statuses", json={"status": "我的团购心得"}))
        json_of(fan.post(f"{served.url}/api/v1/statuses/{own['id']}/favourite"))
        name, data = stream.next()
        listed = json_of(reader.get(f"{served.url}/api/v1/notifications"))
        assert name == "notification"
        assert orjson.loads(data) == listed[0]
        assert (listed[0]["type"], listed[0]["account"]["acct"]) == ("favourite", "fan")
        json_of(fan.post(f"{served.url}/api/v1/statuses", json={"status": "@reader 一起拼团吗"}))
        name, data = stream.next()
        assert (name, orjson.loads(data)["type"]) == ("notification", "mention")
        # The notification stream carries notifications only: the reader's own post made no update.
        assert reader_user.pk
    finally:
        stream.close()


def test_nothing_crosses_a_block_and_followers_only_posts_stay_with_followers(served: Served) -> None:
    _, reader_token, reader = person("reader")
    blocked, _, blocked_client = person("blocked")
    other, _, other_client = person("other")
    relate(served, reader, blocked, "follow", "block")
    user_stream = _stream(served, "user", reader_token)
    public_stream = _stream(served, "public", reader_token)
    try:
        json_of(blocked_client.post(f"{served.url}/api/v1/statuses", json={"status": "看不到我"}))
        json_of(
            other_client.post(
                f"{served.url}/api/v1/statuses", json={"status": "仅粉丝", "visibility": "private"}
            )
        )
        liked = json_of(other_client.post(f"{served.url}/api/v1/statuses", json={"status": "大家好"}))
        # The public stream gets the one public post of someone not blocked, and nothing before it.
        name, data = public_stream.next()
        assert (name, orjson.loads(data)["id"]) == ("update", liked["id"])
        assert orjson.loads(data) == json_of(reader.get(f"{served.url}/api/v1/timelines/public"))[0]
        assert user_stream.quiet_for(1.0) == []
        assert public_stream.quiet_for(0.2) == []
        assert other.pk
    finally:
        user_stream.close()
        public_stream.close()


def test_a_hashtag_stream_gets_the_topics_posts(served: Served) -> None:
    _, reader_token, _ = person("reader")
    _, _, writer = person("writer")
    stream = _stream(served, "hashtag", reader_token, tag="团购")
    try:
        json_of(writer.post(f"{served.url}/api/v1/statuses", json={"status": "没有话题"}))
        tagged = json_of(writer.post(f"{served.url}/api/v1/statuses", json={"status": "今晚 #团购# 开抢"}))
        name, data = stream.next()
        assert (name, orjson.loads(data)["id"]) == ("update", tagged["id"])
    finally:
        stream.close()


def test_a_quiet_stream_has_a_heartbeat_and_ends_with_the_server(settings: Any) -> None:
    settings.STREAMING_HEARTBEAT_SECONDS = 0.3
    _, token, _ = person("reader")
    with asgi_server() as running:
        stream = _stream(running, "public/local", token)
        assert stream.next(comments=True) == (":", ")")
        assert stream.next(comments=True) == (":", "thump")
    # The server's shutdown ended the response; it did not wait for the client to leave.
    assert stream.next() == ("end", "")
    stream.close()


@pytest.mark.parametrize(
    ("token", "status", "code"),
    [(None, 401, "token_required"), ("not-a-token", 401, "invalid_token")],
)
def test_a_stream_needs_a_good_token(served: Served, token: str | None, status: int, code: str) -> None:
    response = httpx.get(
        f"{served.url}/api/v1/streaming/user", headers={"Authorization": f"Bearer {token}"} if token else {}
    )
    assert response.status_code == status
    assert response.json()["code"] == code
    # The query parameter is read too.
    response = httpx.get(f"{served.url}/api/v1/streaming/public", params={"access_token": token or ""})
    assert (response.status_code, response.json()["code"]) == (status, code)


def test_scopes_unknown_streams_and_a_missing_tag_are_refused(served: Served) -> None:
    user = make_user("reader")
    notifications_only, _ = access_token_issue(user=user, scopes="read:notifications")
    app_only, _ = access_token_issue(user=None, scopes="read")
    cases: list[tuple[str, str, dict[str, str], int, str]] = [
        ("user", notifications_only, {}, 403, "insufficient_scope"),
        ("user", app_only, {}, 422, "user_required"),
        ("nonsense", app_only, {}, 404, "unknown_stream"),
        ("hashtag", app_only, {}, 422, "tag_required"),
        ("list", app_only, {}, 422, "list_required"),
        ("list", app_only, {"list": "x1"}, 422, "invalid_list"),
        ("list", app_only, {"list": "5"}, 422, "user_required"),
        ("list", notifications_only, {"list": "5"}, 403, "insufficient_scope"),
    ]
    for path, token, params, status, code in cases:
        response = httpx.get(
            f"{served.url}/api/v1/streaming/{path}", params={"access_token": token, **params}
        )
        assert (response.status_code, response.json()["code"]) == (status, code), path
    # What the scope allows opens.
    stream = _stream(served, "user/notification", notifications_only)
    assert stream.status == 200
    stream.close()
    stream = _stream(served, "public", app_only)
    assert stream.status == 200
    stream.close()


def test_streams_beyond_the_cap_are_refused(served: Served, settings: Any) -> None:
    settings.STREAMING_MAX_STREAMS = 2
    _, token, _ = person("reader")
    open_ones = [_stream(served, "public", token) for _ in range(2)]
    try:
        assert [stream.status for stream in open_ones] == [200, 200]
        refused = httpx.get(f"{served.url}/api/v1/streaming/public", params={"access_token": token})
        assert refused.status_code == 503
        assert refused.json()["code"] == "too_many_streams"
        assert refused.headers["Retry-After"]
    finally:
        for stream in open_ones:
            stream.close()
    # A stream that ended frees its place.
    again = _stream(served, "public", token)
    deadline = 50
    while again.status != 200 and deadline:
        again.close()
        again = _stream(served, "public", token)
        deadline -= 1
    assert again.status == 200
    again.close()


def test_mastodon_py_streams_the_user_timeline(served: Served) -> None:
    from mastodon import Mastodon, StreamListener

    _, reader_token, reader = person("reader")
    author, _, writer = person("writer")
    json_of(reader.post(f"{served.url}/api/v1/accounts/{author.pk}/follow"))
    heard: queue.Queue[tuple[str, Any]] = queue.Queue()

    class Listener(StreamListener):  # type: ignore[misc]
        def on_update(self, status: Any) -> None:
            heard.put(("update", status))

        def on_notification(self, notification: Any) -> None:
            heard.put(("notification", notification))

        def on_delete(self, status_id: Any) -> None:
            heard.put(("delete", status_id))

    client = Mastodon(access_token=reader_token, api_base_url=served.url, version_check_mode="none")
    handle = client.stream_user(Listener(), run_async=True)
    try:
        deadline = time.monotonic() + 10
        while not handle.is_receiving():
            assert time.monotonic() < deadline, "Mastodon.py did not connect"
            time.sleep(0.05)
        posted = json_of(writer.post(f"{served.url}/api/v1/statuses", json={"status": "@reader 新品上架"}))
        events = dict(heard.get(timeout=10) for _ in range(2))
        assert set(events) == {"update", "notification"}
        assert str(events["update"].id) == posted["id"]
        assert events["notification"].type == "mention"
        assert str(events["notification"].status.id) == posted["id"]
        json_of(writer.delete(f"{served.url}/api/v1/statuses/{posted['id']}"))
        kind, status_id = heard.get(timeout=10)
        assert (kind, str(status_id)) == ("delete", posted["id"])
    finally:
        handle.close()


def test_the_streams_apply_the_readers_filters_as_their_timelines_do(served: Served) -> None:
    reader_user, reader_token, reader = person("reader")
    author, _, writer = person("writer")
    json_of(reader.post(f"{served.url}/api/v1/accounts/{author.pk}/follow"))
    filter_made(reader, served, "剧透", ["home", "public", "notifications"], "warn")
    filter_made(reader, served, "sale", ["home", "public", "notifications"], "hide")
    home, public = _stream(served, "user", reader_token), _stream(served, "public", reader_token)
    notices = _stream(served, "user/notification", reader_token)
    try:
        json_of(retried(writer.post, f"{served.url}/api/v1/statuses", json={"status": "Big SALE now"}))
        spoiler = json_of(
            retried(writer.post, f"{served.url}/api/v1/statuses", json={"status": "剧透：结局"})
        )
        for path, stream in (("home", home), ("public", public)):
            # The hidden post never comes; the warned one comes with its match, as the timeline shows it.
            name, data = stream.next()
            status = orjson.loads(data)
            assert (name, status["id"]) == ("update", spoiler["id"])
            assert [result["filter"]["title"] for result in status["filtered"]] == ["剧透"]
            assert status == json_of(reader.get(f"{served.url}/api/v1/timelines/{path}"))[0]
        own = json_of(retried(reader.post, f"{served.url}/api/v1/statuses", json={"status": "剧透慎入"}))
        json_of(retried(writer.post, f"{served.url}/api/v1/statuses/{own['id']}/favourite"))
        name, data = notices.next()
        assert name == "notification"
        assert [result["filter"]["title"] for result in orjson.loads(data)["status"]["filtered"]] == ["剧透"]
        sale = json_of(
            retried(reader.post, f"{served.url}/api/v1/statuses", json={"status": "SALE 门票转让"})
        )
        json_of(retried(writer.post, f"{served.url}/api/v1/statuses/{sale['id']}/favourite"))
        assert notices.quiet_for(1.0) == []  # as the notifications list leaves it out
        assert reader_user.pk
    finally:
        home.close()
        public.close()
        notices.close()


def test_a_stream_ends_with_its_token(served: Served) -> None:
    _, token, _ = person("reader")
    stream = _stream(served, "public", token)
    try:
        assert stream.next(comments=True) == (":", ")")
        assert access_token_revoke(raw=token)
        # The heartbeat's check of the stream's token ends the response (within a few heartbeats).
        events: list[tuple[str, str]] = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and (event := stream.next(comments=True)) == (":", "thump"):
            events.append(event)
        assert event == ("end", ""), events
    finally:
        stream.close()
