"""Mastodon API: trends."""

from ninja import Router

router = Router(tags=["mastodon:trends"])
