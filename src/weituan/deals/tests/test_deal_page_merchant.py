"""The merchant of a deal sees their merchant actions on its page and on its teams' pages, not a
checkout or join form they would be refused (`own_deal`); anyone else sees the forms as before."""

from typing import Any

import pytest
from django.test import Client

from weituan.core.testing import make_user
from weituan.deals.models import Order
from weituan.deals.services.deals import DealInput, deal_create
from weituan.deals.services.orders import order_place
from weituan.deals.tests.conftest import live_deal

pytestmark = pytest.mark.django_db


def _page(user: Any, deal_id: int) -> str:
    return _get(user, f"/deals/{deal_id}/")


def _get(user: Any, path: str) -> str:
    client = Client()
    client.force_login(user)
    response = client.get(path)
    assert response.status_code == 200
    return response.content.decode()


def test_the_merchant_sees_links_to_their_deal_instead_of_the_buy_form(merchant: Any) -> None:
    deal = live_deal(merchant, team_price=8000, team_size=2)
    body = _page(merchant, deal.id)
    actions = body[body.index('class="merchant-actions"') :]
    assert f'href="/merchant/deals/{deal.id}/"' in actions and "进度和订单" in actions
    assert 'href="/merchant/redeem"' in actions and 'href="/merchant/deals/"' in actions
    assert "你的团购" in actions and "这是你出售的团购，你自己不能购买。" in actions
    assert f"/merchant/deals/{deal.id}/edit" not in actions  # published: nothing to edit
    assert f'action="/deals/{deal.id}/checkout"' not in body and 'class="checkout"' not in body
    assert Order.objects.count() == 0


def test_a_draft_links_its_merchant_to_the_editor(merchant: Any) -> None:
    published = live_deal(merchant)
    draft = deal_create(merchant=merchant, data=_input_of(published))
    body = _page(merchant, draft.id)
    actions = body[body.index('class="merchant-actions"') :]
    assert f'href="/merchant/deals/{draft.id}/edit"' in actions


def _input_of(deal: Any) -> DealInput:
    return DealInput(
        title="草稿",
        list_price=deal.list_price,
        deal_price=deal.deal_price,
        max_quantity=deal.max_quantity,
        starts_at=deal.starts_at,
        ends_at=deal.ends_at,
    )


def test_a_shopper_and_another_merchant_still_get_the_checkout(merchant: Any, shopper: Any) -> None:
    deal = live_deal(merchant)
    rival = make_user("other_shop", merchant=True)
    for user in (shopper, rival):
        body = _page(user, deal.id)
        assert f'action="/deals/{deal.id}/checkout"' in body
        assert 'class="merchant-actions"' not in body


def test_the_merchant_gets_links_to_their_deal_on_its_team_pages_not_the_join_form(
    merchant: Any, shopper: Any, fund: Any
) -> None:
    deal = live_deal(merchant, team_price=8000, team_size=3)
    leader = make_user("team_leader")
    fund(leader)
    team_id = order_place(deal_id=deal.id, buyer=leader, quantity=1, team="start").team_id
    checkout = f'action="/deals/{deal.id}/checkout"'

    team_page = _get(merchant, f"/teams/{team_id}/")
    assert checkout not in team_page and f'name="team" value="{team_id}"' not in team_page
    assert "参加这个团" not in team_page and "到团购页参团" not in team_page
    actions = team_page[team_page.index('class="merchant-actions"') :]
    assert f'href="/merchant/deals/{deal.id}/"' in actions and "进度和订单" in actions
    assert "@team_leader" in team_page
    # The deal page's list of teams to join is not offered to the merchant either.
    assert f'name="team" value="{team_id}"' not in _page(merchant, deal.id)

    for page in (_get(shopper, f"/teams/{team_id}/"), _page(shopper, deal.id)):
        assert checkout in page and f'name="team" value="{team_id}"' in page
        assert 'class="merchant-actions"' not in page
    assert Order.objects.count() == 1
