"""Rows that serve every app: rate-limit windows and idempotency records."""

from django.db import models


class RateLimitWindow(models.Model):
    """Requests counted per key per fixed window, used when Redis is not configured."""

    key = models.CharField(max_length=200)
    window_start = models.BigIntegerField()  # unix seconds, aligned to the window
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["key", "window_start"], name="ratelimit_key_window")]


class IdempotencyRecord(models.Model):
    """The first response to a write carrying an Idempotency-Key, replayed for retries of it."""

    scope = models.CharField(max_length=100)  # who sent it, e.g. "user:42"
    key = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField(null=True)
    response = models.JSONField(null=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["scope", "key"], name="idempotency_scope_key")]
        indexes = [models.Index(fields=["created_at"])]
