"""The bare HTTP baseline: an app that reads the order request's body and answers 201 with a fixed order
body of the same shape, served by the same server as the product (WSGI `application`, ASGI `app`).

No authentication, no database, no Redis: what it answers per second is what the HTTP server and the
load generator alone manage on this machine, the ceiling of any checkout over HTTP here.
"""

import json
from typing import Any

BODY = json.dumps(
    {
        "id": 1234567,
        "deal_id": 2,
        "team_id": None,
        "quantity": 1,
        "gift_quantity": 0,
        "unit_price": 100,
        "amount": 100,
        "currency": "CNY",
        "state": "authorized",
        "created_at": "2026-12-05T03:00:00.123456Z",
        "captured_at": None,
        "share": None,
        "vouchers": [],
    }
).encode()
HEADERS = [("Content-Type", "application/json; charset=utf-8"), ("Content-Length", str(len(BODY)))]


def application(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    if length:
        environ["wsgi.input"].read(length)
    start_response("201 Created", HEADERS)
    return [BODY]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send(
        {
            "type": "http.response.start",
            "status": 201,
            "headers": [(name.lower().encode(), value.encode()) for name, value in HEADERS],
        }
    )
    await send({"type": "http.response.body", "body": BODY})
