"""A number in a request written with a digit int() cannot read ("²", a superscript): the pages ignore
it, the API refuses it with its `code`, and neither answers a 500."""

import re

import pytest

from weituan.deals.models import Team
from weituan.deals.services.orders import order_place
from weituan.deals.services.wallet import wallet_top_up
from weituan.deals.tests.conftest import live_deal
from weituan.microblog.models import Post, PostKind
from weituan.microblog.services.interactions import comment_create
from weituan.microblog.services.posts import post_create

SUPERSCRIPT_TWO = "²"


def _post_ids(body: str) -> list[int]:
    return [int(found) for found in re.findall(r'<article class="post" id="post-(\d+)"', body)]


@pytest.mark.django_db
def test_pages_ignore_a_paging_number_they_cannot_read(client, shopper, merchant):
    post = post_create(author=merchant, text="店庆 #周年#")
    comment_create(author=shopper, post_id=post.id, text="好")
    client.force_login(shopper)
    pages = [
        "/",
        "/timeline/new",
        "/@meituan_shop",
        "/@meituan_shop/followers",
        "/@meituan_shop/following",
        "/topics/周年",
        f"/p/{post.id}/comments",
        "/notifications",
    ]
    for page in pages:
        for name in ("max_id", "since_id"):
            plain = client.get(page)
            odd = client.get(f"{page}?{name}={SUPERSCRIPT_TWO}")
            assert odd.status_code == 200, (page, name)
            assert _post_ids(odd.content.decode()) == _post_ids(plain.content.decode()), (page, name)
    searched = client.get(f"/search?q=店庆&offset={SUPERSCRIPT_TWO}")
    assert searched.status_code == 200
    assert _post_ids(searched.content.decode()) == [post.id]


@pytest.mark.django_db
def test_a_reply_to_a_comment_number_that_cannot_be_read_is_a_plain_comment(client, shopper, merchant):
    post = post_create(author=merchant, text="店庆")
    client.force_login(shopper)
    response = client.post(f"/p/{post.id}/comment", {"text": "好吃", "reply_to": SUPERSCRIPT_TWO})
    assert response.status_code == 302
    comment = Post.objects.get(kind=PostKind.COMMENT, author=shopper)
    assert (comment.parent_id, comment.text) == (post.id, "好吃")


@pytest.mark.django_db
def test_a_deal_card_with_an_unreadable_via_is_drawn(client, merchant):
    deal = live_deal(merchant)
    response = client.get(f"/deals/{deal.id}/card?via={SUPERSCRIPT_TWO}")
    assert response.status_code == 200
    assert f'href="/deals/{deal.id}/"' in response.content.decode()


@pytest.mark.django_db
def test_merging_into_an_unreadable_team_number_asks_for_a_team_and_changes_nothing(
    client, shopper, merchant
):
    deal = live_deal(merchant, deal_price=8_000, team_price=5_000, team_size=3)
    wallet_top_up(user=shopper, amount=100_000)
    team_id = order_place(deal_id=deal.id, buyer=shopper, quantity=1, team="start").team_id
    assert team_id is not None
    client.force_login(shopper)
    response = client.post(f"/teams/{team_id}/merge", {"into": SUPERSCRIPT_TWO})
    assert response.status_code == 302 and response["Location"] == f"/teams/{team_id}/"
    team = Team.objects.get(id=team_id)
    assert (team.state, team.members, team.merged_into_id) == ("open", 1, None)


@pytest.mark.django_db
def test_the_api_refuses_an_id_it_cannot_read_with_invalid_id(api_as, shopper, merchant):
    post = post_create(author=merchant, text="店庆")
    api = api_as(shopper)
    answers = [
        api.get(f"/api/v1/weituan/posts/{post.id}/comments?replies_of={SUPERSCRIPT_TWO}"),
        api.get(f"/api/v1/notifications?account_id={SUPERSCRIPT_TWO}"),
        api.post("/api/v1/weituan/notifications/read", {"up_to_id": SUPERSCRIPT_TWO}),
    ]
    for answer in answers:
        assert answer.status_code == 422, answer.content
        assert answer.json()["code"] == "invalid_id"


@pytest.mark.django_db
def test_profile_fields_keyed_by_an_unreadable_index_come_after_the_numbered_ones(api_as, shopper):
    fields = {SUPERSCRIPT_TWO: {"name": "店", "value": "杭州"}, "0": {"name": "站", "value": "weituan"}}
    response = api_as(shopper).patch(
        "/api/v1/accounts/update_credentials", {"fields_attributes": fields}, content_type="application/json"
    )
    assert response.status_code == 200, response.content
    assert [(field["name"], field["value"]) for field in response.json()["fields"]] == [
        ("站", "weituan"),
        ("店", "杭州"),
    ]
