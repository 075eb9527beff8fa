"""Pricing maths as pure functions: unit prices, platform fees and the split of a capture."""

BPS = 10_000


def unit_price_of(*, deal_price: int, team_price: int | None, in_team: bool) -> int:
    if in_team:
        if team_price is None:
            raise ValueError("this deal has no team price")
        return team_price
    return deal_price


def fee_per_unit(*, unit_price: int, fee_bps: int) -> int:
    """The platform's fee on one unit, rounded down so the merchant never gets less than they were told."""
    return unit_price * fee_bps // BPS


def capture_split(*, unit_price: int, quantity: int, fee_bps: int) -> tuple[int, int]:
    """(merchant share, platform fee) of capturing `quantity` units; computed per unit, so per-unit
    refunds reverse a capture exactly."""
    fee = fee_per_unit(unit_price=unit_price, fee_bps=fee_bps) * quantity
    return unit_price * quantity - fee, fee


def discount_percent(*, list_price: int, deal_price: int) -> int:
    if list_price <= 0:
        return 0
    return round(100 * (list_price - deal_price) / list_price)
