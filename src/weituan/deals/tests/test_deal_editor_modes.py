"""The deal editor's sale modes: a mode switched off sells none of its fields (whatever was typed in
them, which the form keeps), an edited team or flash deal comes back with its switch on, and a refused
form focuses its first problem in the page's order, once."""

import re

import pytest

from weituan.deals.models import Deal
from weituan.deals.tests.test_pages import DRAFT_FORM, logged_in

pytestmark = pytest.mark.django_db

TEAM = {"team_price": "19.90", "team_size": "2", "team_window_hours": "6"}
FLASH = {"flash_batches": "2030-01-02 20:00, 50"}


def test_a_mode_switched_off_sells_none_of_its_fields(merchant):
    seller = logged_in(merchant)
    # Team and flash fields typed, then both switches turned off: an ordinary deal, and a batch line
    # that would be refused is not looked at.
    response = seller.post(
        "/merchant/deals/new",
        {**DRAFT_FORM, **TEAM, "flash_batches": "tomorrow, 5", "modes_chosen": "True"},
    )
    assert response.status_code == 302
    deal = Deal.objects.get()
    assert (deal.team_price, deal.team_size, deal.flash_sale, deal.batches.count()) == (None, None, False, 0)
    # Switched on, they are the deal's.
    seller.post(
        f"/merchant/deals/{deal.id}/edit",
        {**DRAFT_FORM, **TEAM, **FLASH, "modes_chosen": "True", "team_mode": "on", "flash_mode": "on"},
    )
    deal.refresh_from_db()
    assert (deal.team_price, deal.team_size, deal.team_window_hours) == (1990, 2, 6)
    assert (deal.flash_sale, deal.batches.count()) == (True, 1)
    page = seller.get(f"/merchant/deals/{deal.id}/edit").content.decode()
    assert re.search(r'<input type="checkbox" name="team_mode"[^>]* checked>', page)
    assert re.search(r'<input type="checkbox" name="flash_mode"[^>]* checked>', page)
    assert 'name="team_price" value="19.90"' in page
    # A new deal starts with both off.
    new = seller.get("/merchant/deals/new").content.decode()
    assert re.search(r'<input type="checkbox" name="team_mode"[^>]*id="id_team_mode">', new)
    assert "autofocus" not in new and "data-first-problem" not in new


def test_a_refused_form_keeps_what_was_typed_and_focuses_its_first_problem(merchant):
    seller = logged_in(merchant)
    typed = {
        **DRAFT_FORM,
        **TEAM,
        "modes_chosen": "True",
        "team_mode": "on",
        "team_price": "45",  # above the deal price
        "tipping_point": "500",  # above the maximum quantity, earlier on the page
    }
    page = seller.post("/merchant/deals/new", typed, HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert Deal.objects.count() == 0
    assert page.count("autofocus") == 1 and page.count("data-first-problem") == 1
    assert re.search(r'<div class="field has-problem" id="field-tipping_point" data-first-problem>', page)
    assert re.search(r'<input type="number" name="tipping_point" value="500"[^>]*autofocus', page)
    assert '<ul class="errorlist" id="id_team_price_error"><li>拼团价必须低于团购价。</li></ul>' in page
    for name in ("title", "team_price", "team_size", "team_window_hours", "starts_at"):
        assert f'name="{name}" value="{typed[name]}"' in page, name
    assert re.search(r'<input type="checkbox" name="team_mode"[^>]* checked>', page)
