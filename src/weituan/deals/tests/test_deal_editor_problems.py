"""The deal editor shows every problem of a refused form at once: beside a field it could not read (a
flash batch line, a picture), the problems the deal's checks find among the fields it did read (a deal
price above the list price, a tipping point above the maximum quantity, an end before the start), each
beside its field, so the merchant puts them all right in one go. A check that reads a field the form
could not read is left for that field to be put right first."""

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from weituan.deals.models import Deal
from weituan.deals.services.deals import deal_input_problems
from weituan.deals.tests.test_pages import DRAFT_FORM, logged_in

pytestmark = pytest.mark.django_db

WRONG = {
    **DRAFT_FORM,
    "modes_chosen": "True",
    "flash_mode": "on",
    "flash_batches": "2030-01-02 20:00, 20\ntomorrow at eight, 30",  # the second line cannot be read
    "deal_price": "150",  # above the list price of 100
    "tipping_point": "500",  # above the maximum quantity of 50
    "ends_at": "2029-12-31T10:00",  # before the start
}


def _error(page: str, field: str) -> list[str]:
    found = re.search(rf'<ul class="errorlist" id="id_{field}_error">(.*?)</ul>', page, re.S)
    return re.findall(r"<li>(.*?)</li>", found[1]) if found else []


def _editor_url(merchant, edit):
    if not edit:
        return "/merchant/deals/new"
    logged_in(merchant).post("/merchant/deals/new", DRAFT_FORM)
    return f"/merchant/deals/{Deal.objects.get().id}/edit"


@pytest.mark.parametrize("edit", [False, True], ids=["new", "edit"])
def test_a_refused_form_shows_every_problem_beside_its_field_at_once(merchant, edit):
    url = _editor_url(merchant, edit)
    before = list(Deal.objects.values())
    page = logged_in(merchant).post(url, WRONG, HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert _error(page, "flash_batches") == ["第 2 行：请按“2030-11-11 20:00, 100”填写一批"]
    assert _error(page, "deal_price") == ["团购价必须大于 0 且不高于原价。"]
    assert _error(page, "tipping_point") == ["成团人数下限必须在 1 到最多售出件数之间。"]
    assert _error(page, "ends_at") == ["结束时间必须晚于开始时间。"]
    assert page.count('class="errorlist"') == 4
    # The first in the page's order takes the focus, once.
    assert page.count("autofocus") == 1
    assert re.search(r'<div class="field has-problem" id="field-deal_price" data-first-problem>', page)
    assert list(Deal.objects.values()) == before  # nothing saved

    english = logged_in(merchant).post(url, WRONG, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert _error(english, "deal_price") == ["The deal price must be above 0 and at most the list price."]
    assert _error(english, "tipping_point") == [
        "The tipping point must be between 1 and the maximum quantity."
    ]
    assert _error(english, "ends_at") == ["The end must be after the start."]


def test_a_check_reading_a_field_the_form_could_not_read_waits_for_it(merchant):
    # The maximum quantity cannot be read: whether the tipping point or the batches fit it is not known
    # yet, but the price is still judged.
    page = (
        logged_in(merchant)
        .post(
            "/merchant/deals/new",
            {
                **WRONG,
                "max_quantity": "many",
                "flash_batches": "2030-01-02 20:00, 7",
                "ends_at": "2030-01-05T10:00",
            },
            HTTP_ACCEPT_LANGUAGE="en",
        )
        .content.decode()
    )
    assert _error(page, "max_quantity") == ["Enter a whole number."]
    assert _error(page, "deal_price") == ["The deal price must be above 0 and at most the list price."]
    assert _error(page, "tipping_point") == [] and _error(page, "flash_batches") == []
    assert page.count('class="errorlist"') == 2
    assert not Deal.objects.exists()


def test_a_refused_picture_comes_with_the_other_problems(merchant):
    broken = SimpleUploadedFile("deal.png", b"\x89PNG not really", content_type="image/png")
    form = {**DRAFT_FORM, "deal_price": "150", "image": broken}
    response = logged_in(merchant).post("/merchant/deals/new", form, HTTP_ACCEPT_LANGUAGE="en")
    page = response.content.decode()
    assert response.status_code == 200
    assert _error(page, "image") and _error(page, "deal_price") == [
        "The deal price must be above 0 and at most the list price."
    ]
    assert not Deal.objects.exists()


def test_the_checks_of_the_fields_given_are_the_deals_own():
    from datetime import UTC, datetime

    start = datetime(2030, 1, 1, tzinfo=UTC)
    # Every field given: exactly what creating the deal would refuse.
    assert deal_input_problems(
        {
            "title": " ",
            "list_price": 100,
            "deal_price": 200,
            "max_quantity": 5,
            "tipping_point": 6,
            "starts_at": start,
            "ends_at": start,
            "flash_batches": ((start, 4),),
        }
    ) == ["title_required", "deal_price_range", "tipping_point_range", "window_order", "flash_batches_total"]
    # Without the maximum quantity nor the end, only what the rest shows; names other than a deal's
    # fields are not looked at.
    assert deal_input_problems(
        {"list_price": 100, "deal_price": 200, "tipping_point": 6, "starts_at": start, "image": []}
    ) == ["deal_price_range"]
    assert deal_input_problems({}) == []
