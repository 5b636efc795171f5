"""The FastAPI app shared by the Gateway and its routers: errors, auth, body limit.

Routers in other modules (pages, listings) import `authorize`, `ApiError` and
`store_of` from here; the Gateway includes them and fills `app.state` at start-up.
"""

import hmac
import threading
from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from actors.domain.errors import VidscribeError
from actors.util.ratelimit import RateLimiter
from serve_app.http.auth import retry_after_header, token_key
from serve_app.http.schemas import ErrorResponse

DEFAULT_MAX_BODY = 16 * 1024
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_LIMITER_LOCK = threading.Lock()

app = FastAPI(
    title="vidscribe",
    summary="Video link -> transcript -> proofread + summary -> WeCom group",
    responses={401: {"model": ErrorResponse}},
)


class ApiError(Exception):
    """An HTTP error with the API's error body."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(status, code, message, headers)
        self.status, self.code, self.message, self.headers = status, code, message, headers


def error_response(status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    body = {"error": {"code": code, "message": message}}
    return JSONResponse(body, status_code=status, headers=headers)


@app.exception_handler(ApiError)
async def _api_error(request: Request, error: ApiError) -> JSONResponse:
    return error_response(error.status, error.code, error.message, error.headers)


@app.exception_handler(VidscribeError)
async def _domain_error(request: Request, error: VidscribeError) -> JSONResponse:
    status = error.http_status if 400 <= error.http_status < 500 else 400
    return error_response(status, error.code, error.message)


@app.exception_handler(RequestValidationError)
async def _validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
    problems = "; ".join(
        f"{'.'.join(str(p) for p in e.get('loc', ())[1:]) or 'body'}: {e.get('msg')}" for e in error.errors()
    )
    return error_response(422, "invalid_request", problems or "malformed request body")


# FastAPI's and Starlette's own errors (unknown route, wrong method, a body it cannot
# decode) get the API's error shape too, so every 4xx has a code clients can rely on.
_HTTP_ERROR_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}


@app.exception_handler(StarletteHTTPException)
async def _http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
    code = _HTTP_ERROR_CODES.get(error.status_code, "http_error")
    headers = dict(error.headers) if error.headers else None  # e.g. Allow on a 405
    return error_response(error.status_code, code, str(error.detail), headers)


class BodyLimit:
    """Refuses request bodies over `app.state.max_body_bytes` with 413.

    Pure ASGI (no BaseHTTPMiddleware): it adds no task and no read of its own per request.
    A declared Content-Length is judged before the route runs; a chunked body is counted
    as the route reads it and refused as soon as it passes the limit.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            limit = getattr(scope["app"].state, "max_body_bytes", DEFAULT_MAX_BODY)
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


app.add_middleware(BodyLimit)


def identify(presented: str, identities: list[tuple[str, str | None]]) -> tuple[bool, str | None]:
    """(token valid, client name or None) for a bearer token.

    Compares against every token without stopping early: timing reveals nothing."""
    matched, client = False, None
    for token, name in identities:
        if hmac.compare_digest(presented.encode(), token.encode()):
            matched, client = True, name
    return matched, client


def identities_of(settings: Any) -> list[tuple[str, str | None]]:
    """Every accepted token with its client: VIDSCRIBE_API_TOKENS (no client) and VIDSCRIBE_CLIENTS__*."""
    plain = [(token.get_secret_value(), None) for token in settings.api_tokens]
    return plain + [(client.token.get_secret_value(), name) for name, client in settings.clients.items()]


async def authorize(request: Request, authorization: Annotated[str | None, Header()] = None) -> None:
    """Require `Authorization: Bearer <token>` with one of the configured tokens, within its rate."""
    scheme, _, presented = (authorization or "").partition(" ")
    matched, client = identify(presented.strip(), getattr(request.app.state, "identities", []))
    if scheme.lower() != "bearer" or not presented.strip() or not matched:
        raise ApiError(401, "unauthorized", "missing or invalid bearer token", {"WWW-Authenticate": "Bearer"})
    request.state.client = client  # routes deliver to and list by this client
    # Only requests that create work count: reads are cheap Store lookups that clients poll.
    limiter = _rate_limiter(request, client)
    if limiter is not None and request.method not in SAFE_METHODS:
        wait = limiter.hit(token_key(presented.strip()))
        if wait is not None:
            raise ApiError(
                429,
                "rate_limited",
                f"more than {limiter.limit} submissions a minute with this token; retry later",
                {"Retry-After": retry_after_header(wait)},
            )


def _rate_limiter(request: Request, client: str | None) -> RateLimiter | None:
    """This replica's per-token limiter for the client's rate (None: no limit), made on first use."""
    state = request.app.state
    settings = getattr(state, "settings", None)
    per_minute = int(getattr(settings, "rate_limit_per_minute", 0) or 0)
    if client is not None and settings is not None and settings.clients[client].rate_limit_per_minute:
        per_minute = settings.clients[client].rate_limit_per_minute
    if per_minute <= 0:
        return None
    with _LIMITER_LOCK:  # cheap, and safe should a sync route ever depend on it
        limiters: dict[int, RateLimiter] = getattr(state, "rate_limiters", None) or {}
        state.rate_limiters = limiters
        if per_minute not in limiters:
            limiters[per_minute] = RateLimiter(per_minute, 60.0)
        return limiters[per_minute]


def store_of(request: Request) -> Any:
    """The async Store client the Gateway put on the app (`await store.get_task(...)`)."""
    return request.app.state.store


def settings_of(request: Request) -> Any:
    """The service Settings the Gateway was built with."""
    return request.app.state.settings
