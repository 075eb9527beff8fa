"""Template filters of the deal pages: states in words (`order.state|order_state`) and amounts of minor
units as money (`order.amount|money:order.currency`)."""

from django import template

from weituan.core.money import MINOR_UNITS, Money
from weituan.deals.labels import (
    DEAL_STATE_LABELS,
    ORDER_STATE_LABELS,
    TEAM_STATE_LABELS,
    VOUCHER_STATE_LABELS,
    state_label,
)

register = template.Library()


@register.filter
def deal_state(state: str) -> str:
    return state_label(DEAL_STATE_LABELS, state)


@register.filter
def order_state(state: str) -> str:
    return state_label(ORDER_STATE_LABELS, state)


@register.filter
def voucher_state(state: str) -> str:
    return state_label(VOUCHER_STATE_LABELS, state)


@register.filter
def team_state(state: str) -> str:
    return state_label(TEAM_STATE_LABELS, state)


@register.filter
def money(amount: int, currency: str) -> str:
    """`amount` minor units of `currency` as a price ("¥99.00"); an unknown currency keeps its code."""
    if currency not in MINOR_UNITS:
        return f"{amount} {currency}"
    return Money(int(amount), currency).format()
