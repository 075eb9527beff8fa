"""Mastodon API: weituan."""

from ninja import Router

router = Router(tags=["mastodon:weituan"])
