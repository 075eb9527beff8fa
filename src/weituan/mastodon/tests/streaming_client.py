"""A live ASGI server on loopback for the streaming tests, people to post on it, a server-sent event
reader and a WebSocket client to listen to it."""

import contextlib
import os
import queue
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
import orjson
import uvicorn
from websockets.sync.client import ClientConnection, connect

from weituan.accounts.tokens import access_token_issue
from weituan.core.testing import make_user
from weituan.mastodon.streaming_asgi import StreamingServer
from weituan.mastodon.streaming_websocket import websocket_options


@dataclass
class Served:
    url: str
    server: StreamingServer


@contextmanager
def asgi_server() -> Iterator[Served]:
    """The ASGI application as `weituan serve` runs it (uvicorn, one process), on a thread of this one."""
    from weituan.asgi import application

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(
        application, host="127.0.0.1", port=port, log_level="warning", lifespan="off", **websocket_options()
    )
    server = StreamingServer(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    try:
        yield Served(f"http://127.0.0.1:{port}", server)
    finally:
        server.should_exit = True
        thread.join(15)
        assert not thread.is_alive(), "the server did not stop"


@contextmanager
def second_process(served: Served, settings: Any) -> Iterator[Served]:
    """Another server process (uvicorn, as `weituan serve` runs it) on the same PostgreSQL database and
    Redis, with this test's key prefix: events made by one reach the streams of the other through Redis."""
    db = settings.DATABASES["default"]
    database_url = (
        f"postgres://{db['USER']}:{db.get('PASSWORD') or ''}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"
    )
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": settings.REDIS_URL,
        "WEITUAN_REDIS_PREFIX": settings.REDIS_KEY_PREFIX,
    }
    command = [sys.executable, "-m", "uvicorn", "weituan.asgi:application", "--host", "127.0.0.1"]
    command += [
        "--port",
        str(port),
        "--lifespan",
        "off",
        "--ws",
        "websockets-sansio",
        "--log-level",
        "warning",
    ]
    process = subprocess.Popen(command, env=env)
    other = Served(f"http://127.0.0.1:{port}", served.server)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, "the second server process stopped"
            assert time.monotonic() < deadline, "the second server process did not start"
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{other.url}/api/v1/streaming/health").status_code == 200:
                    break
            time.sleep(0.2)
        yield other
    finally:
        process.terminate()
        process.wait(15)


class EventReader:
    """Reads one stream on a thread of its own: each event as (name, data), each comment as (":", text),
    and ("end", "") once the server ended the response."""

    def __init__(self, url: str, token: str | None = None, **params: str) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.items: queue.Queue[tuple[str, str]] = queue.Queue()
        self.status: int | None = None
        self.body = b""
        self._opened = threading.Event()
        self._client = httpx.Client(timeout=httpx.Timeout(30.0, read=60.0))
        self._thread = threading.Thread(target=self._read, args=(url, headers, params), daemon=True)
        self._thread.start()
        assert self._opened.wait(10), "the stream did not answer"

    def _read(self, url: str, headers: dict[str, str], params: dict[str, str]) -> None:
        try:
            with self._client.stream("GET", url, headers=headers, params=params) as response:
                self.status = response.status_code
                if response.status_code != 200:
                    self.body = response.read()
                    self._opened.set()
                    return
                self._opened.set()
                name, data = "", []
                for line in response.iter_lines():
                    if line.startswith(":"):
                        self.items.put((":", line[1:]))
                    elif line.startswith("event: "):
                        name = line[len("event: ") :]
                    elif line.startswith("data: "):
                        data.append(line[len("data: ") :])
                    elif line == "" and name:
                        self.items.put((name, "\n".join(data)))
                        name, data = "", []
                self.items.put(("end", ""))
        except Exception:  # closed from this side (`close`), or the connection dropped
            self.items.put(("closed", ""))
        finally:
            self._opened.set()

    def next(self, timeout: float = 10.0, *, comments: bool = False) -> tuple[str, str]:
        """The next event (comments skipped unless asked for)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            assert left > 0, "no event came"
            item = self.items.get(timeout=left)
            if comments or item[0] != ":":
                return item

    def quiet_for(self, seconds: float) -> list[tuple[str, str]]:
        """The events (not comments) that came within `seconds`: the test expects none."""
        time.sleep(seconds)
        found = []
        while not self.items.empty():
            item = self.items.get_nowait()
            if item[0] != ":":
                found.append(item)
        return found

    def close(self) -> None:
        self._client.close()
        self._thread.join(10)


def json_of(response: Any) -> Any:
    assert response.status_code < 300, response.text
    return response.json()


def person(name: str) -> tuple[Any, str, httpx.Client]:
    """A user, their token, and an API client carrying it."""
    user = make_user(name)
    token, _ = access_token_issue(user=user)
    return user, token, httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=30)


def retried(send: Any, url: str, **kwargs: Any) -> Any:
    """A write sent again after a 503 `unavailable` ("try again in a few seconds"), as a client does: the
    tests' in-memory SQLite refuses a write to a table another connection is reading, as the streams'
    renderers are here."""
    for _ in range(20):
        response = send(url, **kwargs)
        if response.status_code != 503:
            return response
        time.sleep(0.1)
    return response


def filter_made(client: httpx.Client, served: Served, keyword: str, context: list[str], action: str) -> Any:
    """A v2 filter titled and matching `keyword`, made through the API by `client`'s user."""
    body = {
        "title": keyword,
        "context": context,
        "filter_action": action,
        "keywords_attributes": [{"keyword": keyword}],
    }
    return json_of(retried(client.post, f"{served.url}/api/v2/filters", json=body))


def relate(served: Served, client: httpx.Client, account: Any, *actions: str) -> None:
    """`client`'s user follows, blocks... (`actions`, in order) `account`, through the API."""
    for action in actions:
        json_of(client.post(f"{served.url}/api/v1/accounts/{account.pk}/{action}"))


def reader_and_followed(served: Served) -> tuple[str, httpx.Client, Any, httpx.Client]:
    """A reader (their token and client) following a writer (the user and their client)."""
    _, reader_token, reader = person("reader")
    author, _, writer = person("writer")
    relate(served, reader, author, "follow")
    return reader_token, reader, author, writer


class WebSocketReader:
    """A Mastodon WebSocket connection to /api/v1/streaming: what the server sends, as parsed JSON."""

    def __init__(
        self,
        served: Served,
        *,
        subprotocols: list[str] | None = None,
        headers: dict[str, str] | None = None,
        **params: str,
    ) -> None:
        url = "ws" + served.url[len("http") :] + "/api/v1/streaming"
        if params:
            url += "?" + urlencode(params)
        self._open = ExitStack()
        self.connection: ClientConnection = self._open.enter_context(
            connect(
                url,
                subprotocols=subprotocols,  # type: ignore[arg-type]
                additional_headers=headers,
                open_timeout=10,
                close_timeout=5,
            )
        )

    def send(self, message: dict[str, Any] | str) -> None:
        self.connection.send(message if isinstance(message, str) else orjson.dumps(message).decode())

    def subscribe(self, stream: str, **params: Any) -> None:
        self.send({"type": "subscribe", "stream": stream, **params})

    def next(self, timeout: float = 10.0) -> dict[str, Any]:
        message: dict[str, Any] = orjson.loads(self.connection.recv(timeout=timeout))
        return message

    def settled(self) -> list[dict[str, Any]]:
        """The messages that came before the server handled every message sent so far: it answers them
        in order, so the answer to one it cannot honour, sent now, comes after all of them."""
        self.send({"type": "settle"})
        before: list[dict[str, Any]] = []
        while True:
            message = self.next()
            if message.get("code") == "invalid_message":
                return before
            before.append(message)

    def quiet_for(self, seconds: float) -> list[dict[str, Any]]:
        """The messages that came within `seconds`: the test expects none."""
        found = []
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                found.append(self.next(timeout=left))
            except TimeoutError:
                break
        return found

    def close(self) -> None:
        self._open.close()
