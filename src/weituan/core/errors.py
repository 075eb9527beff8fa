"""Errors a user can act on: each has a stable `code`, a human `message` and an HTTP status."""

from datetime import UTC, datetime

from django.db import InterfaceError, OperationalError, connections

from weituan.core.redis import REDIS_UNREACHABLE

# What a store that is away raises: Redis down or not answering; the database's connection lost, or the
# database refusing to go on for now (shutting down, a lock or statement timeout, a deadlock).
STORE_OUTAGES: tuple[type[Exception], ...] = (*REDIS_UNREACHABLE, OperationalError, InterfaceError)
DATABASE_OUTAGES: tuple[type[Exception], ...] = (OperationalError, InterfaceError)


def lost_connections_closed() -> None:
    """Close this thread's database connections that an error left unusable (the database ended them:
    a restart, a failover, an operator's pg_terminate_backend), outside any transaction, so the next
    query opens a fresh one. For the clean-up that follows work a store outage failed: Django only
    replaces such a connection when the request ends, and every query made on it until then fails."""
    for db in connections.all(initialized_only=True):
        if not db.in_atomic_block:
            db.close_if_unusable_or_obsolete()


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
    """Too many requests in a fixed window: `limit` of them allowed, the window ending at `reset_at` (Unix
    seconds), `retry_after` seconds from now. The caller is told all three in headers, as Mastodon does."""

    code = "rate_limited"
    status = 429

    def __init__(self, message: str, *, limit: int, reset_at: int, retry_after: int) -> None:
        super().__init__(message, retry_after=retry_after)
        self.limit = limit
        self.reset_at = reset_at
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        """`Retry-After` and Mastodon's `X-RateLimit-*` headers. Clients such as Mastodon.py wait until
        `X-RateLimit-Reset` (ISO 8601) before retrying; without it they guess."""
        reset = datetime.fromtimestamp(self.reset_at, tz=UTC)
        return {
            "Retry-After": str(self.retry_after),
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": reset.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        }


class Unavailable(ServiceError):
    """A store the request needs cannot be reached for now: the request may be sent again after
    `retry_after` seconds (a write with the same Idempotency-Key is not made twice)."""

    code = "unavailable"
    status = 503
    retry_after = 5

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


def store_unreachable() -> Unavailable:
    """What a request that met an unreachable store is told."""
    return Unavailable("The service is briefly unavailable; try again in a few seconds")
