"""Mastodon API: timelines."""

from ninja import Router

router = Router(tags=["mastodon:timelines"])
