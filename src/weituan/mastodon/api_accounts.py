"""Mastodon API: accounts."""

from ninja import Router

router = Router(tags=["mastodon:accounts"])
