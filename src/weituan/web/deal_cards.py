"""The deal card inside a post that announces a deal, as the deals facade describes it."""

from typing import Any

from weituan.deals.facade import DealCard, deal_card


def deal_card_for(deal_id: int | None, viewer: Any) -> DealCard | None:
    """The card of `deal_id`, or None when the post announces no deal or the deal is not published."""
    if deal_id is None:
        return None
    return deal_card(deal_id=deal_id, viewer=viewer)
