"""What the paths answered in front of Django share on ASGI: reading a header of the scope, and reading
a small request body whole while keeping it for Django should Django answer after all."""

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]


def scope_header(scope: Scope, name: bytes) -> str | None:
    """The first value of header `name` (lower case) in an ASGI scope."""
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


async def body_buffered(receive: Receive, limit: int) -> tuple[bytes | None, Receive]:
    """Read the whole request body. Returns it (None if the client left first or sent more than `limit`
    bytes, whatever its Content-Length said) and a `receive` that hands the next app the same messages,
    then whatever the client sends after them."""
    chunks: list[bytes] = []
    kept: list[MutableMapping[str, Any]] = []
    complete = False
    size = 0
    while not complete:
        message = await receive()
        kept.append(message)
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        size += len(chunks[-1])
        complete = not message.get("more_body", False)
        if size > limit:
            complete = False  # Django reads the rest under its own limits
            break

    async def replay() -> MutableMapping[str, Any]:
        return kept.pop(0) if kept else await receive()

    if not complete:
        return None, replay
    body = b"".join(chunks)
    kept[:] = [{"type": "http.request", "body": body, "more_body": False}]
    return body, replay
