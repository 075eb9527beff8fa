"""Mastodon API: statuses."""

from ninja import Router

router = Router(tags=["mastodon:statuses"])
