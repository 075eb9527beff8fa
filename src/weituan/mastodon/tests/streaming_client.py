"""A live ASGI server on loopback for the streaming tests, and a server-sent event reader to listen to it."""

import queue
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn

from weituan.mastodon.streaming_asgi import StreamingServer


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
    config = uvicorn.Config(application, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
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
