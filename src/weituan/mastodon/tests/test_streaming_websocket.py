"""Mastodon's WebSocket streaming against a live ASGI server, with a real WebSocket client: several
streams on one connection, the same payloads as the event streams, subscriptions changing, refusals,
and what never crosses a block."""

import base64
import os
import socket
import time
from typing import Any

import httpx
import orjson
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from weituan.accounts.tokens import access_token_issue, access_token_revoke
from weituan.core.stream_events import _deliver
from weituan.core.testing import make_user
from weituan.mastodon.tests.streaming_client import (
    EventReader,
    Served,
    WebSocketReader,
    asgi_server,
    json_of,
    person,
    reader_and_followed,
    relate,
    second_process,
)

pytestmark = pytest.mark.django_db(transaction=True)


def _until(reader: WebSocketReader, count: int) -> list[dict[str, Any]]:
    return [reader.next() for _ in range(count)]


def test_user_and_hashtag_streams_share_one_connection(served: Served) -> None:
    reader_token, reader, _, writer = reader_and_followed(served)
    _, _, stranger = person("stranger")
    ws = WebSocketReader(served, access_token=reader_token, stream="user")
    events = EventReader(f"{served.url}/api/v1/streaming/user", reader_token)
    try:
        ws.subscribe("hashtag", tag="团购")
        assert ws.settled() == []
        # A stranger's post reaches the topic's stream only.
        tagged = json_of(stranger.post(f"{served.url}/api/v1/statuses", json={"status": "今晚 #团购# 开抢"}))
        message = ws.next()
        assert (message["stream"], message["event"]) == (["hashtag", "团购"], "update")
        assert orjson.loads(message["payload"])["id"] == tagged["id"]
        assert (
            orjson.loads(message["payload"])
            == json_of(reader.get(f"{served.url}/api/v1/timelines/tag/团购"))[0]
        )
        # A followed account's post reaches the home stream, with the very text the event stream sends.
        posted = json_of(writer.post(f"{served.url}/api/v1/statuses", json={"status": "新品上架"}))
        message = ws.next()
        assert (message["stream"], message["event"]) == (["user"], "update")
        assert events.next() == ("update", message["payload"])
        assert (
            orjson.loads(message["payload"]) == json_of(reader.get(f"{served.url}/api/v1/timelines/home"))[0]
        )
        assert orjson.loads(message["payload"])["id"] == posted["id"]
        # A like of the reader's post is a notification on the user stream.
        own = json_of(reader.post(f"{served.url}/api/v1/statuses", json={"status": "我的团购心得"}))
        assert ws.next() == {"stream": ["user"], "event": "update", "payload": events.next()[1]}
        json_of(writer.post(f"{served.url}/api/v1/statuses/{own['id']}/favourite"))
        message = ws.next()
        assert (message["stream"], message["event"]) == (["user"], "notification")
        assert events.next() == ("notification", message["payload"])
        listed = json_of(reader.get(f"{served.url}/api/v1/notifications"))
        assert orjson.loads(message["payload"]) == listed[0]
        assert listed[0]["type"] == "favourite"
        # A delete goes to the home stream, and to the public ones for a public post.
        json_of(writer.delete(f"{served.url}/api/v1/statuses/{posted['id']}"))
        deletes = _until(ws, 2)
        assert sorted((m["stream"], m["event"], m["payload"]) for m in deletes) == [
            (["hashtag", "团购"], "delete", posted["id"]),
            (["user"], "delete", posted["id"]),
        ]
        assert events.next() == ("delete", posted["id"])
    finally:
        ws.close()
        events.close()


def test_an_edit_is_a_status_update_on_the_streams_showing_the_post(served: Served) -> None:
    reader_token, reader, _, writer = reader_and_followed(served)
    posted = json_of(writer.post(f"{served.url}/api/v1/statuses", json={"status": "今晚开抢"}))
    ws = WebSocketReader(served, access_token=reader_token, stream="user")
    events = EventReader(f"{served.url}/api/v1/streaming/user", reader_token)
    try:
        ws.subscribe("public")
        assert ws.settled() == []
        json_of(writer.put(f"{served.url}/api/v1/statuses/{posted['id']}", json={"status": "今晚八点开抢"}))
        updates = _until(ws, 2)
        assert sorted((m["stream"], m["event"]) for m in updates) == [
            (["public"], "status.update"),
            (["user"], "status.update"),
        ]
        shown = json_of(reader.get(f"{served.url}/api/v1/timelines/home"))[0]
        for message in updates:
            assert orjson.loads(message["payload"]) == shown
        assert "今晚八点开抢" in shown["content"]
        assert shown["edited_at"] is not None
        assert events.next() == (
            "status.update",
            next(m for m in updates if m["stream"] == ["user"])["payload"],
        )
    finally:
        ws.close()
        events.close()


def test_a_list_stream_gets_its_accounts_posts(served: Served) -> None:
    _, reader_token, reader = person("reader")
    member, _, writer = person("member")
    outsider, _, other = person("outsider")
    for followed in (member, outsider):
        relate(served, reader, followed, "follow")
    made = json_of(reader.post(f"{served.url}/api/v1/lists", json={"title": "好店"}))
    json_of(
        reader.post(
            f"{served.url}/api/v1/lists/{made['id']}/accounts", json={"account_ids": [str(member.pk)]}
        )
    )
    ws = WebSocketReader(served, access_token=reader_token)
    try:
        ws.subscribe("list", list=made["id"])
        assert ws.settled() == []
        json_of(other.post(f"{served.url}/api/v1/statuses", json={"status": "不在分组里"}))
        posted = json_of(writer.post(f"{served.url}/api/v1/statuses", json={"status": "分组里的新品"}))
        message = ws.next()
        assert (message["stream"], message["event"]) == (["list", made["id"]], "update")
        listed = json_of(reader.get(f"{served.url}/api/v1/timelines/list/{made['id']}"))
        assert orjson.loads(message["payload"]) == listed[0]
        assert listed[0]["id"] == posted["id"]
        assert outsider.pk
    finally:
        ws.close()


def test_unsubscribing_stops_a_stream_and_leaves_the_others(served: Served) -> None:
    _, reader_token, _ = person("reader")
    _, _, writer = person("writer")
    ws = WebSocketReader(served, access_token=reader_token, stream="public")
    try:
        ws.subscribe("hashtag", tag="团购")
        ws.subscribe("hashtag", tag="团购")  # the same stream twice is listened to once
        assert ws.settled() == []
        first = json_of(writer.post(f"{served.url}/api/v1/statuses", json={"status": "#团购# 第一场"}))
        assert sorted((m["stream"], orjson.loads(m["payload"])["id"]) for m in _until(ws, 2)) == [
            (["hashtag", "团购"], first["id"]),
            (["public"], first["id"]),
        ]
        ws.send({"type": "unsubscribe", "stream": "public"})
        ws.send({"type": "unsubscribe", "stream": "public:media"})  # never subscribed: no error
        assert ws.settled() == []
        second = json_of(writer.post(f"{served.url}/api/v1/statuses", json={"status": "#团购# 第二场"}))
        message = ws.next()
        assert (message["stream"], orjson.loads(message["payload"])["id"]) == (
            ["hashtag", "团购"],
            second["id"],
        )
        ws.send({"type": "unsubscribe", "stream": "hashtag", "tag": "团购"})
        assert ws.settled() == []
        json_of(writer.post(f"{served.url}/api/v1/statuses", json={"status": "#团购# 第三场"}))
        assert ws.quiet_for(1.0) == []
    finally:
        ws.close()


def test_nothing_crosses_a_block_on_any_stream(served: Served) -> None:
    reader_user, reader_token, reader = person("reader")
    blocked, _, blocked_client = person("blocked")
    _, _, other = person("other")
    relate(served, reader, blocked, "follow", "block")
    ws = WebSocketReader(served, access_token=reader_token, stream="user")
    try:
        ws.subscribe("public")
        ws.subscribe("hashtag", tag="团购")
        assert ws.settled() == []
        hidden = json_of(
            blocked_client.post(f"{served.url}/api/v1/statuses", json={"status": "@reader #团购# 看不到我"})
        )
        shown = json_of(other.post(f"{served.url}/api/v1/statuses", json={"status": "#团购# 大家好"}))
        got = _until(ws, 2)
        assert sorted((m["stream"], m["event"], orjson.loads(m["payload"])["id"]) for m in got) == [
            (["hashtag", "团购"], "update", shown["id"]),
            (["public"], "update", shown["id"]),
        ]
        json_of(blocked_client.delete(f"{served.url}/api/v1/statuses/{hidden['id']}"))
        assert ws.quiet_for(1.0) == []
        assert reader_user.pk
    finally:
        ws.close()


@pytest.mark.parametrize(("token", "code"), [(None, "token_required"), ("not-a-token", "invalid_token")])
def test_a_bad_token_is_refused_before_the_upgrade(served: Served, token: str | None, code: str) -> None:
    with pytest.raises(InvalidStatus) as refused:
        if token is None:
            WebSocketReader(served, stream="user")
        else:
            WebSocketReader(served, stream="user", access_token=token)
    response = refused.value.response
    assert response.status_code == 401
    assert orjson.loads(response.body)["code"] == code
    with pytest.raises(InvalidStatus) as refused:
        WebSocketReader(served, subprotocols=["not-a-token"], stream="user")
    assert refused.value.response.status_code == 401


def test_the_token_may_come_as_the_protocol_or_the_authorization_header(served: Served) -> None:
    _, token, writer = person("reader")
    by_protocol = WebSocketReader(served, subprotocols=[token], stream="user")
    by_header = WebSocketReader(served, headers={"Authorization": f"Bearer {token}"}, stream="user")
    try:
        # The protocol offered is the one accepted, as browsers require.
        assert by_protocol.connection.subprotocol == token
        # Both user streams opened (each reads its reader's home first) before the post is written.
        assert by_protocol.settled() == by_header.settled() == []
        posted = json_of(writer.post(f"{served.url}/api/v1/statuses", json={"status": "自己的帖子"}))
        for ws in (by_protocol, by_header):
            message = ws.next()
            assert (message["event"], orjson.loads(message["payload"])["id"]) == ("update", posted["id"])
    finally:
        by_protocol.close()
        by_header.close()


def test_bad_messages_are_answered_with_an_error_and_the_connection_stays(served: Served) -> None:
    user = make_user("reader")
    notifications_only, _ = access_token_issue(user=user, scopes="read:notifications")
    full, _ = access_token_issue(user=user)
    _, _, writer = person("writer")
    _, _, other = person("other")
    theirs = json_of(other.post(f"{served.url}/api/v1/lists", json={"title": "别人的"}))
    ws = WebSocketReader(served, access_token=notifications_only, stream="nonsense")
    try:
        sent: list[dict[str, Any] | str] = [
            "not json",
            "[1, 2]",
            {"type": "shout", "stream": "user"},
            {"type": "subscribe"},
            {"type": "subscribe", "stream": "public"},
            {"type": "subscribe", "stream": "hashtag"},
            {"type": "unsubscribe", "stream": "nonsense"},
        ]
        for message in sent:
            ws.send(message)
        assert [(m["status"], m["code"]) for m in _until(ws, len(sent) + 1)] == [
            (400, "unknown_stream"),  # the query's stream
            (400, "invalid_message"),
            (400, "invalid_message"),
            (400, "invalid_message"),
            (400, "invalid_message"),
            (403, "insufficient_scope"),
            (422, "tag_required"),
            (400, "unknown_stream"),
        ]
        # Still open: what the token may read is subscribed and arrives.
        ws.subscribe("user:notification")
        assert ws.settled() == []
        json_of(writer.post(f"{served.url}/api/v1/statuses", json={"status": "@reader 一起拼团吗"}))
        message = ws.next()
        assert (message["stream"], message["event"]) == (["user:notification"], "notification")
        assert orjson.loads(message["payload"])["type"] == "mention"
    finally:
        ws.close()
    ws = WebSocketReader(served, access_token=full)
    try:
        for message in (
            {"type": "subscribe", "stream": "list"},
            {"type": "subscribe", "stream": "list", "list": "abc"},
            {"type": "subscribe", "stream": "list", "list": theirs["id"]},
            {"type": "subscribe", "stream": "list", "list": int(theirs["id"]) + 10**6},
            '{"type": "subscribe", "stream": "list", "list": 100000000000000000000000000000}',
            {"type": "subscribe", "stream": "list", "list": ["1"]},
        ):
            ws.send(message)
        assert [(m["status"], m["code"]) for m in _until(ws, 6)] == [
            (422, "list_required"),
            (422, "invalid_list"),
            (404, "not_found"),
            (404, "not_found"),
            (400, "invalid_message"),
            (400, "invalid_message"),
        ]
    finally:
        ws.close()


def test_connections_beyond_the_cap_are_refused(served: Served, settings: Any) -> None:
    settings.STREAMING_MAX_STREAMS = 1
    _, token, _ = person("reader")
    first = WebSocketReader(served, access_token=token, stream="public")
    try:
        with pytest.raises(InvalidStatus) as refused:
            WebSocketReader(served, access_token=token, stream="public")
        assert refused.value.response.status_code == 503
        assert orjson.loads(refused.value.response.body)["code"] == "too_many_streams"
        assert refused.value.response.headers["Retry-After"]
    finally:
        first.close()
    # A connection that closed frees its place.
    deadline = time.monotonic() + 5
    while True:
        try:
            again = WebSocketReader(served, access_token=token)
            break
        except InvalidStatus:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    again.close()


def test_a_reader_who_cannot_keep_up_is_closed(served: Served) -> None:
    from weituan.mastodon.streaming_asgi import STREAM_QUEUE

    _, token, _ = person("reader")
    ws = WebSocketReader(served, access_token=token, stream="public")
    try:
        assert ws.settled() == []
        # More events than a stream keeps waiting, handed over at once as the broker hands them.
        for n in range(STREAM_QUEUE * 4):
            _deliver({"t": "post", "id": 10**15 + n, "a": 1})
        with pytest.raises(ConnectionClosed) as closed:
            ws.quiet_for(10)
            ws.next(timeout=1)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1013
    finally:
        ws.close()


def test_a_connection_is_closed_going_away_when_the_server_stops(settings: Any) -> None:
    settings.STREAMING_HEARTBEAT_SECONDS = 0.3
    _, token, _ = person("reader")
    with asgi_server() as running:
        ws = WebSocketReader(running, access_token=token, stream="public")
        assert ws.settled() == []
    with pytest.raises(ConnectionClosed) as closed:
        ws.next(timeout=5)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1001
    ws.close()


def _raw_handshake(served: Served, token: str) -> socket.socket:
    """A WebSocket opened by hand, so the frames the server sends are seen as they are (a client
    library answers pings by itself)."""
    host, port = served.url[len("http://") :].split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET /api/v1/streaming?access_token={token}&stream=public HTTP/1.1\r\n"
            f"Host: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


def _frame(sock: socket.socket) -> tuple[int, bytes]:
    first, second = sock.recv(1)[0], sock.recv(1)[0]
    length = second & 0x7F
    if length == 126:
        length = int.from_bytes(sock.recv(2))
    data = b""
    while len(data) < length:
        data += sock.recv(length - len(data))
    return first & 0x0F, data


def test_a_quiet_connection_is_pinged_and_a_client_that_never_answers_is_dropped(served: Served) -> None:
    _, token, _ = person("reader")
    sock = _raw_handshake(served, token)
    try:
        started = time.monotonic()
        opcode, _ = _frame(sock)
        assert opcode == 0x9  # ping
        # No pong goes back: the server gives up on the client after the ping timeout.
        opcode, data = _frame(sock)
        assert (opcode, int.from_bytes(data[:2])) == (0x8, 1011)  # close, "keepalive ping timeout"
        assert time.monotonic() - started < 5
        assert sock.recv(1) == b""
    finally:
        sock.close()


def test_the_health_check_and_event_streams_are_untouched(served: Served) -> None:
    response = httpx.get(f"{served.url}/api/v1/streaming/health")
    assert (response.status_code, response.text) == (200, "OK")
    response = httpx.get(f"{served.url}/api/v1/streaming")
    assert (response.status_code, response.json()["code"]) == (400, "stream_path_required")


@pytest.mark.postgres
@pytest.mark.redis
def test_a_post_made_by_one_server_process_reaches_a_websocket_on_another(
    served: Served, settings: Any
) -> None:
    with second_process(served, settings) as other:
        reader_token, reader, _, writer = reader_and_followed(served)
        ws = WebSocketReader(other, access_token=reader_token, stream="user")
        try:
            assert ws.settled() == []
            time.sleep(1.1)  # what a process with no stream of its own last read of the presence key
            posted = json_of(writer.post(f"{served.url}/api/v1/statuses", json={"status": "另一个进程发的"}))
            message = ws.next(timeout=20)
            assert (message["stream"], message["event"]) == (["user"], "update")
            shown = json_of(reader.get(f"{other.url}/api/v1/timelines/home"))[0]
            assert orjson.loads(message["payload"]) == shown
            assert shown["id"] == posted["id"]
            json_of(writer.delete(f"{served.url}/api/v1/statuses/{posted['id']}"))
            assert ws.next(timeout=20) == {"stream": ["user"], "event": "delete", "payload": posted["id"]}
        finally:
            ws.close()


@pytest.mark.parametrize("how", ["revoked", "deactivated"])
def test_a_connection_ends_with_its_token(served: Served, how: str) -> None:
    user, token, _ = person("reader")
    _, other_token, _ = person("other")
    ws = WebSocketReader(served, access_token=token, stream="public")
    other = WebSocketReader(served, access_token=other_token, stream="public")
    try:
        assert ws.settled() == []
        if how == "revoked":
            assert access_token_revoke(raw=token)
        else:
            type(user).objects.filter(pk=user.pk).update(is_active=False)
        with pytest.raises(ConnectionClosed) as closed:
            ws.next(timeout=10)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1008
        # The other reader's connection is still open and served.
        assert other.settled() == []
    finally:
        ws.close()
        other.close()
