"""Mastodon API: instance."""

from ninja import Router

router = Router(tags=["mastodon:instance"])
router_v2 = Router(tags=["mastodon:v2"])
