"""Mastodon API: search."""

from ninja import Router

router = Router(tags=["mastodon:search"])
router_v2 = Router(tags=["mastodon:v2"])
