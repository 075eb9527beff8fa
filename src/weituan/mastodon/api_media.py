"""Mastodon API: media."""

from ninja import Router

router = Router(tags=["mastodon:media"])
router_v2 = Router(tags=["mastodon:v2"])
