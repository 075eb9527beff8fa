"""The baseline: a bare ASGI app that answers every request with a 302, served by the same uvicorn."""


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send(
        {
            "type": "http.response.start",
            "status": 302,
            "headers": [(b"location", b"https://weituan.example/deals/1"), (b"content-length", b"0")],
        }
    )
    await send({"type": "http.response.body", "body": b""})
