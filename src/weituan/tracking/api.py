"""Native API: tracking."""

from ninja import Router

router = Router(tags=["tracking"])
