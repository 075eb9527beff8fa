"""Mastodon API: apps."""

from ninja import Router

router = Router(tags=["mastodon:apps"])
