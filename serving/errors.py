"""One exception family for the gateway, mapped to OpenAI-shaped error responses in one place."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException


class GatewayError(Exception):
    """An error the client should see, with OpenAI's `type`, `param` and `code`."""

    status_code = 500
    error_type = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        retry_after_s: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code
        self.headers = headers or {}
        if retry_after_s is not None:
            self.headers["Retry-After"] = str(retry_after_s)

    def body(self) -> dict[str, Any]:
        """The OpenAI error object."""
        return error_body(self.message, self.error_type, self.param, self.code)


class BadRequestError(GatewayError):
    status_code = 400
    error_type = "invalid_request_error"


class AuthenticationError(GatewayError):
    status_code = 401
    error_type = "authentication_error"


class PermissionDeniedError(GatewayError):
    """A valid key that may not do this (a route outside its list, an admin route)."""

    status_code = 403
    error_type = "permission_error"


class NotFoundError(GatewayError):
    status_code = 404
    error_type = "invalid_request_error"


class PayloadTooLargeError(GatewayError):
    status_code = 413
    error_type = "invalid_request_error"


class UnprocessableError(GatewayError):
    """Well-formed, but asks for something this deployment cannot do (e.g. image parts for a text model)."""

    status_code = 422
    error_type = "invalid_request_error"


class RateLimitError(GatewayError):
    """The bounded queue is full; retry after `Retry-After` seconds."""

    status_code = 429
    error_type = "rate_limit_error"

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message, code="queue_full", retry_after_s=retry_after_s)


class ContextLengthError(BadRequestError):
    """Prompt + retrieved sources + answer do not fit the model's context, even with no sources."""

    def __init__(self, message: str) -> None:
        super().__init__(message, param="messages", code="context_length_exceeded")


class UpstreamUnavailableError(GatewayError):
    """vLLM cannot be reached; clients should retry later."""

    status_code = 503
    error_type = "service_unavailable"

    def __init__(self, message: str, *, retry_after_s: int = 5) -> None:
        super().__init__(message, code="upstream_unavailable", retry_after_s=retry_after_s)


class UpstreamError(GatewayError):
    """vLLM answered with an error; its status and message are passed on."""

    def __init__(self, status_code: int, message: str, error_type: str | None, param: str | None = None):
        super().__init__(message, param=param)
        self.status_code = status_code
        self.error_type = error_type or ("invalid_request_error" if status_code < 500 else "upstream_error")


def error_body(
    message: str, error_type: str, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    """`{"error": {...}}` as OpenAI returns it."""
    return {"error": {"message": message, "type": error_type, "param": param, "code": code}}


def validation_error(exc: RequestValidationError) -> GatewayError:
    """The first validation problem as a 400 naming the field (e.g. `messages.0.role`)."""
    errors = exc.errors()
    if not errors:
        return BadRequestError("invalid request body")
    first = errors[0]
    location = [str(part) for part in first.get("loc", ()) if part != "body"]
    if first.get("type") == "json_invalid":
        return BadRequestError(f"request body is not valid JSON: {first.get('msg', '')}", code="invalid_json")
    param = ".".join(location) or None
    if first.get("type") == "unsupported_content_part":  # well-formed, but not for a text-only model
        return UnprocessableError(f"{param}: {first.get('msg', '')}", param=param, code="unsupported_content")
    if param is None:
        return BadRequestError(f"request body: {first.get('msg', 'invalid value')}")
    return BadRequestError(f"{param}: {first.get('msg', 'invalid value')}", param=param)


def install_error_handlers(app: FastAPI) -> None:
    """Route every error the app can raise to an OpenAI-shaped JSON response."""

    async def on_gateway_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, GatewayError)
        return JSONResponse(exc.body(), status_code=exc.status_code, headers=exc.headers)

    async def on_validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return await on_gateway_error(request, validation_error(exc))

    async def on_http_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 404:
            body = error_body(
                f"unknown endpoint: {_.method} {_.url.path}", "invalid_request_error", None, "not_found"
            )
        elif exc.status_code == 405:
            body = error_body(f"method {_.method} not allowed on {_.url.path}", "invalid_request_error")
        else:
            body = error_body(str(exc.detail), "invalid_request_error")
        return JSONResponse(body, status_code=exc.status_code)

    async def on_unexpected(_: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(
            error_body(f"internal error: {type(exc).__name__}", "internal_error"), status_code=500
        )

    app.add_exception_handler(GatewayError, on_gateway_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(Exception, on_unexpected)
