"""Template filters of the deal pages: states in words (`order.state|order_state`), amounts of minor
units as money (`order.amount|money:order.currency`) and moments of a deal's calendar."""

from datetime import datetime

from django import template
from django.utils import timezone

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


@register.filter
def deal_moment(moment: datetime) -> str:
    """A moment of a deal's calendar in the site's time: "12-06 20:00" this year, with the year otherwise
    ("2030-01-01 10:00"), so that a sale next year is not read as one this year."""
    return moment_text(moment)


def moment_text(moment: datetime) -> str:
    local = timezone.localtime(moment)
    return f"{local:%m-%d %H:%M}" if local.year == timezone.localtime().year else f"{local:%Y-%m-%d %H:%M}"
