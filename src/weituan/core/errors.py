"""Errors a user can act on: each has a stable `code`, a human `message` and an HTTP status."""


class ServiceError(Exception):
    """Raised by services and queries; the API turns it into JSON, the CLI into one line."""

    code = "error"
    status = 400

    def __init__(
        self, message: str, *, code: str | None = None, status: int | None = None, **details: object
    ):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.details = details


class NotFound(ServiceError):
    code = "not_found"
    status = 404


class PermissionDenied(ServiceError):
    code = "forbidden"
    status = 403


class Unauthorized(ServiceError):
    code = "unauthorized"
    status = 401


class Conflict(ServiceError):
    code = "conflict"
    status = 409


class ValidationFailed(ServiceError):
    code = "invalid"
    status = 422


class RateLimited(ServiceError):
    code = "rate_limited"
    status = 429
