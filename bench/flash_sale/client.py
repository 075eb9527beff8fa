"""A minimal HTTP/1.1 keep-alive client on asyncio streams, for loading the server from one process.

On a 2-core machine the load generator shares the CPU with the server, so it has to be cheap: a general
client (httpx) spent most of a core building and parsing requests. This one writes each request as
bytes and reads the status, the headers it needs and the body, nothing else. Loopback only.
"""

import asyncio
import json
from typing import Any


class HTTPFailed(Exception):
    """The connection broke or the answer was not HTTP."""


class Connection:
    def __init__(self, host: str, port: int, timeout: float = 60):
        if host != "127.0.0.1":
            raise ValueError("load is only ever sent to 127.0.0.1")
        self.host, self.port, self.timeout = host, port, timeout
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post_json(self, path: str, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, Any]:
        """POST `body` as JSON; returns (status, parsed JSON body or None). Reconnects once if needed."""
        payload = json.dumps(body).encode()
        head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        request = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\n{head}\r\n"
        ).encode() + payload
        try:
            return await asyncio.wait_for(self._exchange(request), self.timeout)
        except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError) as exc:
            await self.close()
            raise HTTPFailed(str(exc) or type(exc).__name__) from exc

    async def _exchange(self, request: bytes) -> tuple[int, Any]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        self.writer.write(request)
        await self.writer.drain()
        status_line = await self.reader.readline()
        if not status_line:
            raise ValueError("connection closed")
        status = int(status_line.split(b" ", 2)[1])
        length, chunked, close = 0, False, False
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
            elif name == b"connection" and b"close" in value.lower():
                close = True
        if chunked:
            parts = []
            while True:
                size = int((await self.reader.readline()).split(b";")[0], 16)
                if size == 0:
                    await self.reader.readline()
                    break
                parts.append(await self.reader.readexactly(size))
                await self.reader.readline()
            data = b"".join(parts)
        else:
            data = await self.reader.readexactly(length) if length else b""
        if close:
            await self.close()
        try:
            return status, json.loads(data) if data else None
        except ValueError:
            return status, None

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
            self.reader = None
