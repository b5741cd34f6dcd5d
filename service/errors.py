"""The API's error hierarchy and the one handler that renders every error as JSON.

Every error the service answers has one shape::

    {"error": {"code": "validation_failed", "message": "...", "details": [...]}}

Unexpected faults become a 500 of the same shape; their traceback goes to the log,
never to the client.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, jsonify
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)


class ApiError(Exception):
    """Base of every error the API answers on purpose."""

    status: int = 500
    code: str = "internal_error"

    def __init__(self, message: str, details: Any = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        self.details = details
        self.headers = headers or {}


class BadRequest(ApiError):
    status, code = 400, "bad_request"


class Unauthorized(ApiError):
    status, code = 401, "unauthorized"


class NotFound(ApiError):
    status, code = 404, "not_found"


class MethodNotAllowed(ApiError):
    status, code = 405, "method_not_allowed"


class PayloadTooLarge(ApiError):
    status, code = 413, "payload_too_large"


class UnsupportedMediaType(ApiError):
    status, code = 415, "unsupported_media_type"


class ValidationFailed(ApiError):
    status, code = 422, "validation_failed"

    @classmethod
    def from_pydantic(cls, exc: ValidationError,
                      message: str = "the request body is invalid") -> ValidationFailed:
        """The error for a failed pydantic validation, with one detail per problem."""
        return cls(message, details=[
            {"loc": list(err["loc"]), "msg": err["msg"], "type": err["type"]}
            for err in exc.errors(include_url=False, include_input=False)])


class TooManyRequests(ApiError):
    status, code = 429, "too_many_requests"


class Overloaded(ApiError):
    """The service sheds load instead of queueing without bound."""

    status, code = 503, "overloaded"


class NotReady(ApiError):
    status, code = 503, "not_ready"


# Werkzeug's own HTTP errors (routing, body limits) mapped onto our codes.
_HTTP_CODES = {cls.status: cls.code for cls in (
    BadRequest, Unauthorized, NotFound, MethodNotAllowed, PayloadTooLarge,
    UnsupportedMediaType, ValidationFailed, TooManyRequests)}


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details}}


def error_response(exc: ApiError) -> Response:
    """The JSON answer to ``exc``: its status, body and headers."""
    response = jsonify(error_body(exc.code, exc.message, exc.details))
    response.status_code = exc.status
    response.headers.update(exc.headers)
    return response


def register_error_handlers(app: Flask) -> None:
    """Render ApiError, Werkzeug's HTTP errors and anything unexpected as JSON."""
    app.errorhandler(ApiError)(error_response)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        status = exc.code or 500
        code = _HTTP_CODES.get(status, "http_error")
        response = jsonify(error_body(code, exc.description or exc.name))
        response.status_code = status
        for key, value in exc.get_headers():  # e.g. Allow on a 405
            if key.lower() != "content-type":
                response.headers[key] = value
        return response

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.exception("unhandled error")
        response = jsonify(error_body("internal_error", "the server failed to answer"))
        response.status_code = 500
        return response
