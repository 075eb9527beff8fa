import pytest
from hypothesis import given
from hypothesis import strategies as st

from weituan.core.money import CurrencyMismatch, Money
from weituan.core.states import InvalidTransition, StateGraph


def test_money_formats_minor_units():
    assert Money(12345, "CNY").format() == "¥123.45"
    assert Money(-5, "CNY").format() == "-¥0.05"
    # The yen is not the yuan: it has a symbol of its own.
    assert Money(1200, "JPY").format() == "JP¥1,200"
    assert Money(-1200, "JPY").format() == "-JP¥1,200"


def test_money_refuses_floats_and_mixed_currencies():
    with pytest.raises(TypeError):
        Money(1.5, "CNY")  # type: ignore[arg-type]
    with pytest.raises(CurrencyMismatch):
        Money(1, "CNY") + Money(1, "USD")


@given(st.lists(st.integers(min_value=-(10**12), max_value=10**12), max_size=50))
def test_money_sums_like_integers(amounts):
    total = Money(0, "CNY")
    for amount in amounts:
        total = total + Money(amount, "CNY")
    assert total.amount == sum(amounts)


DEAL = StateGraph.declare(
    "deal",
    "draft",
    {
        "draft": ["scheduled", "live"],
        "scheduled": ["live"],
        "live": ["tipped", "failed"],
        "tipped": ["closed"],
    },
)


def test_state_graph_knows_its_edges_and_terminals():
    assert DEAL.can("draft", "live")
    assert not DEAL.can("failed", "live")
    assert DEAL.terminal == frozenset({"failed", "closed"})
    assert DEAL.sources_of("live") == ["draft", "scheduled"]
    with pytest.raises(InvalidTransition):
        DEAL.check("closed", "live")
