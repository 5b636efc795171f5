"""The API's error shape `{"error": {"code", "message"}}`, the one place errors become HTTP."""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from actors.domain.errors import VidscribeError
from actors.domain.task import TaskRecord
from actors.storage.client import StoreClient

MAX_TASK_ID = 64  # ids are 22 characters; anything longer is not worth a Store call

# FastAPI's and Starlette's own errors (unknown route, wrong method, a body it cannot
# decode) get the API's error shape too, so every 4xx has a code clients can rely on.
_HTTP_ERROR_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}


class ApiError(Exception):
    """An HTTP error with the API's error body."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(status, code, message, headers)
        self.status, self.code, self.message, self.headers = status, code, message, headers


def error_response(status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    body = {"error": {"code": code, "message": message}}
    return JSONResponse(body, status_code=status, headers=headers)


async def task_or_404(store: StoreClient, task_id: str) -> TaskRecord:
    """The task, or a 404 ApiError (also for ids too long to be one)."""
    task = await store.get_task(task_id) if len(task_id) <= MAX_TASK_ID else None
    if task is None:
        raise ApiError(404, "not_found", "no such task")
    return task


def install_error_handlers(app: FastAPI) -> None:
    """Map ApiError, domain errors, validation errors and Starlette's errors to the API's shape."""

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

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_ERROR_CODES.get(error.status_code, "http_error")
        headers = dict(error.headers) if error.headers else None  # e.g. Allow on a 405
        return error_response(error.status_code, code, str(error.detail), headers)
