"""Request bodies over the limit are refused with 413, before or while they are read."""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serve_app.http.errors import error_response


class BodyLimit:
    """Refuses request bodies over `max_bytes` with 413.

    Pure ASGI (no BaseHTTPMiddleware): it adds no task and no read of its own per request.
    A declared Content-Length is judged before the route runs; a chunked body is counted
    as the route reads it and refused as soon as it passes the limit.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            limit = self.max_bytes
            length = Headers(scope=scope).get("content-length")
            if length is not None and (not length.isdigit() or int(length) > limit):
                await error_response(413, "body_too_large", _too_large(limit))(scope, receive, send)
                return
            if length is None:
                receive = _counted(receive, limit)
        await self.app(scope, receive, send)


def _too_large(limit: int) -> str:
    return f"request body over {limit} bytes"


def _counted(receive: Receive, limit: int) -> Receive:
    """`receive` that raises 413 once the body it has passed on exceeds `limit` bytes."""
    received = 0

    async def counted() -> Message:
        nonlocal received
        message = await receive()
        received += len(message.get("body", b""))
        if received > limit:  # FastAPI re-raises HTTP errors met while reading a body
            raise StarletteHTTPException(413, _too_large(limit))
        return message

    return counted
