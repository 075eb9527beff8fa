"""Mastodon API: relations."""

from ninja import Router

router = Router(tags=["mastodon:relations"])
