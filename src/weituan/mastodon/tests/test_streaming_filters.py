"""The reader's keyword filters on a live server's streams, each write waited for before the next: a
notification whose status a hiding filter of notifications matches never comes (over the event streams
and the WebSocket), as the notifications lists leave it out; one a warning filter matches comes with its
match."""

import itertools
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest

from weituan.mastodon.tests.streaming_client import (
    EventReader,
    Served,
    WebSocketReader,
    filter_made,
    json_of,
    person,
    retried,
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
