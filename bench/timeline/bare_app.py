"""The bare HTTP baseline of the home timeline: an app that answers every request with one real home
page (its body and headers, captured from the product before the run, in the file `WT_BARE_PAGE`),
served by the same server as the product (WSGI `application`, ASGI `app`).

No authentication, no database, no Redis: its CPU per request is what the HTTP server and the load
generator alone cost for a page of that size here. Added to the raw store read's CPU, it gives the
lowest CPU any implementation of the endpoint could spend over HTTP on this machine, and so the
highest API / raw ratio it could reach.
"""

import json
import os
from pathlib import Path
from typing import Any

_PAGE = json.loads(Path(os.environ["WT_BARE_PAGE"]).read_text())
BODY: bytes = _PAGE["body"].encode()
HEADERS: list[tuple[str, str]] = [(name, value) for name, value in _PAGE["headers"]] + [
    ("Content-Length", str(len(BODY)))
]


def application(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", HEADERS)
    return [BODY]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(name.lower().encode(), value.encode()) for name, value in HEADERS],
        }
    )
    await send({"type": "http.response.body", "body": BODY})
