"""Mastodon API: notifications."""

from ninja import Router

router = Router(tags=["mastodon:notifications"])
