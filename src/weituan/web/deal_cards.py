"""The deal card inside a post that announces a deal, drawn only when the deals app offers one."""

import importlib
import importlib.util
from functools import cache
from typing import Any

from weituan.core.errors import ServiceError

DEALS_FACADE = "weituan.deals.facade"


@cache
def _deal_card_source() -> Any | None:
    """`deal_card` of the deals facade, or None while that facade is not installed.

    The micro-blog must work without deals (deals sit above it in the layering), so posts look the
    facade up by name instead of importing it.
    """
    if importlib.util.find_spec(DEALS_FACADE) is None:
        return None
    return getattr(importlib.import_module(DEALS_FACADE), "deal_card", None)


def deal_card_for(deal_id: int | None, viewer: Any) -> Any | None:
    """The card of `deal_id` as the deals facade describes it, or None when there is nothing to show."""
    if deal_id is None:
        return None
    source = _deal_card_source()
    if source is None:
        return None
    try:
        return source(deal_id=deal_id, viewer=viewer)
    except ServiceError:
        # A deal that was withdrawn or is hidden from this viewer leaves the post without a card.
        return None
