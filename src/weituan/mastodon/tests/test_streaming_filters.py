"""The reader's keyword filters on a live server's streams, each write waited for before the next: a
notification whose status a hiding filter of notifications matches never comes (over the event streams
and the WebSocket), as the notifications lists leave it out; one a warning filter matches comes with its
match. A change to the filters is told on each of the reader's `user` streams (`filters_changed`, in any
server process) and applies from the next event on."""

import itertools
import queue
import time
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest

from weituan.accounts.tokens import access_token_issue
from weituan.mastodon.tests.streaming_client import (
    EventReader,
    Served,
    WebSocketReader,
    filter_made,
    json_of,
    person,
    reader_and_followed,
    retried,
    second_process,
)

pytestmark = pytest.mark.django_db(transaction=True)

Notice = dict[str, Any]
_markers = itertools.count()


def _sse_notices(stream: EventReader) -> Callable[[], Notice | None]:
    """The next event's notification (None for another event) from a server-sent event stream."""

    def read() -> Notice | None:
        name, data = stream.next()
        return orjson.loads(data) if name == "notification" else None

    return read


def _ws_notices(ws: WebSocketReader) -> Callable[[], Notice | None]:
    def read() -> Notice | None:
        message = ws.next()
        return orjson.loads(message["payload"]) if message.get("event") == "notification" else None

    return read


class Waited:
    """The reader's notification streams, read after each write up to a marker: a mention sent after
    the write, which comes once the stream has rendered every event before it."""

    def __init__(self, served: Served, pinger: httpx.Client, readers: dict[str, Callable[[], Notice | None]]):
        self.served = served
        self.pinger = pinger
        self.readers = readers
        self.came: dict[str, list[Notice]] = {name: [] for name in readers}
        self.written: Any = None  # what the last write answered

    def after(self, write: Callable[[], Any]) -> list[tuple[str, str, list[str]]]:
        """The notifications each stream got for `write` (type, status id, the titles of the filters
        that matched the status), the same on every stream."""
        self.written = write()
        marker = f"标记{next(_markers)}"
        json_of(
            retried(
                self.pinger.post, f"{self.served.url}/api/v1/statuses", json={"status": f"@reader {marker}"}
            )
        )
        told = {}
        for name, read in self.readers.items():
            got: list[Notice] = []
            while True:
                notice = read()
                if notice is None:
                    continue
                self.came[name].append(notice)
                if notice["type"] == "mention" and marker in notice["status"]["content"]:
                    break
                got.append(notice)
            told[name] = [
                (
                    notice["type"],
                    notice["status"]["id"],
                    [result["filter"]["title"] for result in notice["status"]["filtered"]],
                )
                for notice in got
            ]
        first, *others = told.values()
        assert all(other == first for other in others), told
        return first


def test_a_notification_a_hiding_filter_matches_never_comes_as_the_lists_leave_it_out(served: Served) -> None:
    url = served.url
    _, reader_token, reader = person("reader")
    _, _, writer = person("writer")
    _, _, pinger = person("pinger")
    filter_made(reader, served, "剧透", ["notifications"], "warn")
    filter_made(reader, served, "sale", ["notifications"], "hide")
    own = {
        text: json_of(retried(reader.post, f"{url}/api/v1/statuses", json={"status": text}))["id"]
        for text in ("SALE 门票转让", "剧透慎入", "周末去哪")
    }
    sale, spoiler, plain = own.values()
    user = EventReader(f"{url}/api/v1/streaming/user", reader_token)
    notices = EventReader(f"{url}/api/v1/streaming/user/notification", reader_token)
    ws = WebSocketReader(served, access_token=reader_token, stream="user:notification")
    try:
        assert ws.settled() == []
        streams = {
            "user": _sse_notices(user),
            "user:notification": _sse_notices(notices),
            "ws": _ws_notices(ws),
        }
        waited = Waited(served, pinger, streams)

        def act(path: str, **body: Any) -> Callable[[], Any]:
            return lambda: json_of(retried(writer.post, f"{url}/api/v1/{path}", json=body or None))

        # Likes, reblogs and mentions alike: each is left out when its status is hidden.
        assert waited.after(act(f"statuses/{sale}/favourite")) == []
        assert waited.after(act(f"statuses/{spoiler}/favourite")) == [("favourite", spoiler, ["剧透"])]
        assert waited.after(act(f"statuses/{plain}/favourite")) == [("favourite", plain, [])]
        assert waited.after(act(f"statuses/{sale}/reblog")) == []
        assert waited.after(act(f"statuses/{plain}/reblog")) == [("reblog", plain, [])]
        assert waited.after(act("statuses", status="@reader SALE 便宜")) == []
        # A reply to a hidden status is told: the filter reads the reply's own words.
        told = waited.after(act("statuses", status="好", in_reply_to_id=sale))
        assert told == [("mention", waited.written["id"], [])]

        # What each stream sent is what the notifications list shows, newest first, and the grouped
        # notifications name the same statuses.
        listed = json_of(reader.get(f"{url}/api/v1/notifications", params={"limit": 40}))
        for came in waited.came.values():
            assert [notice["id"] for notice in reversed(came)] == [notice["id"] for notice in listed]
            assert [notice["status"]["filtered"] for notice in reversed(came)] == [
                notice["status"]["filtered"] for notice in listed
            ]
        grouped = json_of(reader.get(f"{url}/api/v2/notifications", params={"limit": 40}))
        assert {group["status_id"] for group in grouped["notification_groups"]} == {
            notice["status"]["id"] for notice in listed
        }
    finally:
        user.close()
        notices.close()
        ws.close()


Told = tuple[str, ...]


def _sse_told(stream: EventReader) -> Callable[[], Told]:
    """The next event of a server-sent event stream: (`update`, status id, its text), (`notification`,
    type, status id) or (`filters_changed`, its data line)."""

    def read() -> Told:
        name, data = stream.next()
        return _told(name, data)

    return read


def _told(name: str, data: str) -> Told:
    if name == "update":
        status = orjson.loads(data)
        return (name, status["id"], status["content"])
    if name == "notification":
        notice = orjson.loads(data)
        return (name, notice["type"], notice["status"]["id"])
    return (name, data)


class UserWebSocket:
    """A WebSocket on the reader's `user` and `user:notification` streams: what the `user` one says, as
    the event streams say it, and every message kept."""

    def __init__(self, ws: WebSocketReader) -> None:
        self.ws = ws
        self.messages: list[dict[str, Any]] = []

    def read(self) -> Told:
        while True:
            message = self.ws.next()
            self.messages.append(message)
            if message["stream"] != ["user"]:
                continue
            if message["event"] == "filters_changed":
                # No payload at all, as Mastodon's WebSocket sends it.
                assert message == {"stream": ["user"], "event": "filters_changed"}
                return ("filters_changed", "undefined")
            return _told(message["event"], message["payload"])


class UserStreams:
    """The reader's `user` streams, read after each write up to a marker: a post of someone they follow,
    which comes once every event before it has."""

    def __init__(self, served: Served, writer: httpx.Client, readers: dict[str, Callable[[], Told]]):
        self.served = served
        self.writer = writer
        self.readers = readers
        self.written: Any = None

    def after(self, write: Callable[[], Any]) -> list[Told]:
        """What each stream got for `write` (the same on every stream)."""
        self.written = write()
        marker = f"标记{next(_markers)}"
        json_of(retried(self.writer.post, f"{self.served.url}/api/v1/statuses", json={"status": marker}))
        told = {}
        for name, read in self.readers.items():
            got = []
            while (event := read())[0] != "update" or marker not in event[2]:
                got.append(event)
            told[name] = got
        first, *others = told.values()
        assert all(other == first for other in others), told
        return first


FILTERS_CHANGED = ("filters_changed", "undefined")


def test_a_change_to_the_filters_is_told_on_each_user_stream_of_the_reader_and_applies_at_once(
    served: Served,
) -> None:
    url = served.url
    reader_user, reader_token, reader = person("reader")
    second_token, _ = access_token_issue(user=reader_user)  # another client of the same reader
    author, _, writer = person("writer")
    other_user, other_token, other = person("other")
    _, _, fan = person("fan")
    for client in (reader, other):
        json_of(client.post(f"{url}/api/v1/accounts/{author.pk}/follow"))
    own = json_of(retried(reader.post, f"{url}/api/v1/statuses", json={"status": "SALE 门票转让"}))["id"]
    user = EventReader(f"{url}/api/v1/streaming/user", reader_token)
    second = EventReader(f"{url}/api/v1/streaming/user", second_token)
    notices = EventReader(f"{url}/api/v1/streaming/user/notification", reader_token)
    others = EventReader(f"{url}/api/v1/streaming/user", other_token)
    ws = WebSocketReader(served, access_token=reader_token, stream="user")
    try:
        ws.subscribe("user:notification")
        assert ws.settled() == []
        socket = UserWebSocket(ws)
        streams = UserStreams(
            served, writer, {"user": _sse_told(user), "second": _sse_told(second), "ws": socket.read}
        )

        def send(client: httpx.Client, method: str, path: str, **body: Any) -> Callable[[], Any]:
            extra = {"json": body} if body else {}
            return lambda: json_of(retried(getattr(client, method), f"{url}/api/{path}", **extra))

        def post(client: httpx.Client, text: str) -> Callable[[], Any]:
            return send(client, "post", "v1/statuses", status=text)

        # Before the reader hides "sale", its posts and the likes of their own post come.
        told = streams.after(post(writer, "SALE 特价"))
        assert told == [("update", streams.written["id"], "<p>SALE 特价</p>")]
        assert streams.after(send(writer, "post", f"v1/statuses/{own}/favourite")) == [
            ("notification", "favourite", own)
        ]
        body = {"title": "广告", "context": ["home", "notifications"], "filter_action": "hide"}
        made = streams.after(
            send(reader, "post", "v2/filters", **body, keywords_attributes=[{"keyword": "sale"}])
        )
        assert made == [FILTERS_CHANGED]
        filter_id = streams.written["id"]
        # From then on, what the new filter hides never comes on the streams opened before it.
        assert streams.after(post(writer, "SALE 又来了")) == []
        assert streams.after(send(fan, "post", f"v1/statuses/{own}/favourite")) == []
        # Each change is told once: the filter with its keywords, a keyword, a status, the filter's removal.
        change = send(
            reader, "put", f"v2/filters/{filter_id}", title="促销", keywords_attributes=[{"keyword": "促销"}]
        )
        assert streams.after(change) == [FILTERS_CHANGED]
        assert streams.after(send(reader, "post", f"v2/filters/{filter_id}/keywords", keyword="团购")) == [
            FILTERS_CHANGED
        ]
        keyword_id = streams.written["id"]
        for change in (
            send(reader, "put", f"v2/filters/keywords/{keyword_id}", keyword="拼团"),
            send(reader, "delete", f"v2/filters/keywords/{keyword_id}"),
            send(reader, "post", f"v2/filters/{filter_id}/statuses", status_id=own),
        ):
            assert streams.after(change) == [FILTERS_CHANGED]
        status_filter_id = streams.written["id"]
        assert streams.after(send(reader, "delete", f"v2/filters/statuses/{status_filter_id}")) == [
            FILTERS_CHANGED
        ]
        # Someone else's filter cannot be changed: nothing is told.
        refused = retried(other.delete, f"{url}/api/v2/filters/{filter_id}")
        assert refused.status_code == 404
        assert streams.after(lambda: None) == []
        assert streams.after(send(reader, "delete", f"v2/filters/{filter_id}")) == [FILTERS_CHANGED]
        told = streams.after(post(writer, "SALE 第三次"))
        assert told == [("update", streams.written["id"], "<p>SALE 第三次</p>")]
        # Mastodon's v1 filters are the same filters.
        v1 = {"phrase": "推广", "context": ["home"], "irreversible": True}
        assert streams.after(send(reader, "post", "v1/filters", **v1)) == [FILTERS_CHANGED]
        v1_id = streams.written["id"]
        assert streams.after(send(reader, "put", f"v1/filters/{v1_id}", phrase="广告")) == [FILTERS_CHANGED]
        assert streams.after(send(reader, "delete", f"v1/filters/{v1_id}")) == [FILTERS_CHANGED]

        # The notifications stream carries notifications only, and another reader's user stream hears
        # nothing of this reader's filters.
        json_of(retried(writer.post, f"{url}/api/v1/statuses", json={"status": "@reader 完"}))
        came = []
        while (event := _told(*notices.next()))[:2] != ("notification", "mention"):
            came.append(event)
        assert came == [("notification", "favourite", own)]
        assert {event[0] for event in _until_update(others, "完")} == {"update"}
        assert {message["event"] for message in socket.messages if message["stream"] != ["user"]} == {
            "notification"
        }
        assert other_user.pk != reader_user.pk
    finally:
        for stream in (user, second, notices, others):
            stream.close()
        ws.close()


def _until_update(stream: EventReader, text: str) -> list[Told]:
    """The events of `stream` up to the update whose text holds `text` (that one included)."""
    came = []
    while True:
        event = _told(*stream.next())
        came.append(event)
        if event[0] == "update" and text in event[2]:
            return came


def test_mastodon_py_hears_filters_changed_and_the_new_filter_applies_at_once(served: Served) -> None:
    from mastodon import Mastodon, StreamListener

    _, reader_token, _ = person("reader")
    author, _, writer = person("writer")
    heard: queue.Queue[tuple[str, Any]] = queue.Queue()

    class Listener(StreamListener):  # type: ignore[misc]
        def on_update(self, status: Any) -> None:
            heard.put(("update", str(status.id)))

        def on_filters_changed(self) -> None:
            heard.put(("filters_changed", None))

    def post(text: str) -> str:
        return str(
            json_of(retried(writer.post, f"{served.url}/api/v1/statuses", json={"status": text}))["id"]
        )

    client = Mastodon(access_token=reader_token, api_base_url=served.url, version_check_mode="none")
    client.account_follow(author.pk)
    handle = client.stream_user(Listener(), run_async=True)
    try:
        deadline = time.monotonic() + 10
        while not handle.is_receiving():
            assert time.monotonic() < deadline, "Mastodon.py did not connect"
            time.sleep(0.05)
        made = client.create_filter_v2("广告", ["home"], "hide", keywords_attributes=[{"keyword": "sale"}])
        assert heard.get(timeout=10) == ("filters_changed", None)
        post("SALE 特价")
        shown = post("新品上架")
        assert heard.get(timeout=10) == ("update", shown)  # the hidden one never came
        client.update_filter_v2(made.id, context=["notifications"])
        assert heard.get(timeout=10) == ("filters_changed", None)
        shown = post("SALE 又来了")  # home is no longer filtered
        assert heard.get(timeout=10) == ("update", shown)
        client.delete_filter_v2(made.id)
        assert heard.get(timeout=10) == ("filters_changed", None)
    finally:
        handle.close()


@pytest.mark.postgres
@pytest.mark.redis
def test_a_filter_changed_through_one_server_process_is_told_on_the_streams_of_another(
    served: Served, settings: Any
) -> None:
    with second_process(served, settings) as other:
        reader_token, reader, _, writer = reader_and_followed(served)
        ws = WebSocketReader(other, access_token=reader_token, stream="user")
        events = EventReader(f"{other.url}/api/v1/streaming/user", reader_token)
        try:
            assert ws.settled() == []
            time.sleep(1.1)  # what a process with no stream of its own last read of the presence key
            filter_made(reader, served, "sale", ["home"], "hide")
            assert ws.next(timeout=20) == {"stream": ["user"], "event": "filters_changed"}
            assert events.next(timeout=20) == ("filters_changed", "undefined")
            # The other process's streams apply the filter made through this one.
            json_of(writer.post(f"{served.url}/api/v1/statuses", json={"status": "SALE 特价"}))
            posted = json_of(writer.post(f"{served.url}/api/v1/statuses", json={"status": "新品上架"}))
            message = ws.next(timeout=20)
            assert (message["event"], orjson.loads(message["payload"])["id"]) == ("update", posted["id"])
            assert events.next(timeout=20) == ("update", message["payload"])
        finally:
            ws.close()
            events.close()
