"""Relational rows of tracking: short links, ingestion API keys and the outbox of business events."""

from django.db import models
from django.db.models import Q


class LinkChannel(models.TextChoices):
    MICROBLOG = "microblog", "micro-blog share"
    PUSH = "push", "push"
    EMAIL = "email", "email"
    OUTBOUND = "outbound", "outbound link in a post"


class ShortLink(models.Model):
    """A /s/<code> link. One per share: who shared which post through which channel, and at which hop.

    `hop_depth` is 0 for the original post, 1 for a repost of it, 2 for a repost of that repost...
    `dedup_key` makes creation idempotent (one link per sharer, post, channel and campaign).
    """

    code = models.CharField(max_length=16, unique=True)
    target_url = models.URLField(max_length=2000)
    channel = models.CharField(max_length=16, choices=LinkChannel.choices)
    hop_depth = models.PositiveSmallIntegerField(default=0)
    sharer_id = models.BigIntegerField(null=True, blank=True)
    post_id = models.BigIntegerField(null=True, blank=True)
    deal_id = models.BigIntegerField(null=True, blank=True)
    campaign = models.CharField(max_length=100, blank=True)
    dedup_key = models.CharField(max_length=120, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["post_id"]), models.Index(fields=["sharer_id"])]

    def __str__(self) -> str:
        return f"/s/{self.code} -> {self.target_url}"


class ApiKey(models.Model):
    """A key a site sends with its events (native API `X-Api-Key`, PostHog `api_key`/`token`).

    Like PostHog project keys these are write-only and may sit in a browser; only a hash is kept.
    """

    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=12)
    key_hash = models.CharField(max_length=64, unique=True)
    owner_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


class OutboxEvent(models.Model):
    """A business event written in the same transaction as the change it records.

    A mover copies unmoved rows to the analytics store after commit and stamps `moved_at`;
    a crash in between is healed by the next move, which skips event ids the store already holds.
    """

    event_id = models.CharField(max_length=64, unique=True)
    event = models.CharField(max_length=64)
    ts = models.DateTimeField()
    visitor_id = models.CharField(max_length=64, blank=True)
    user_id = models.BigIntegerField(null=True, blank=True)
    payload = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)
    moved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["id"], condition=Q(moved_at__isnull=True), name="tracking_outbox_unmoved"),
        ]

    def __str__(self) -> str:
        return f"{self.event} {self.event_id}"
