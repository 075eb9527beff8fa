"""A deal post, and each repost of it, reaches Mastodon clients with a PreviewCard of the deal."""

from typing import Any

import pytest
from mastodon import Mastodon

from weituan.deals.tests.conftest import live_deal
from weituan.microblog.services.posts import repost_create


@pytest.mark.django_db
def test_deal_posts_and_their_reposts_carry_the_deals_card(
    api_as: Any, shopper: Any, merchant: Any, outsider: Any
) -> None:
    deal = live_deal(merchant, images=["/static/web/icon.png"])
    hop = repost_create(reposter=outsider, post_id=deal.post_id, comment="拼一个")
    api = api_as(shopper)
    for post_id in (deal.post_id, hop.id):
        status = api.get(f"/api/v1/statuses/{post_id}").json()
        card = status["card"]
        assert card["url"] == f"http://testserver/deals/{deal.id}/"
        assert (card["title"], card["type"], card["provider_name"]) == ("双人火锅套餐", "link", "Weituan")
        assert card["description"] == "¥99.00 · ¥200.00 · -50%"
        assert card["image"] == "http://testserver/static/web/icon.png"
        assert card["author_url"] == f"http://testserver/@{merchant.username}"
    # The account's timeline (many statuses at once) and a plain post.
    listed = api.get(f"/api/v1/accounts/{outsider.pk}/statuses").json()
    assert [item["card"]["title"] for item in listed] == ["双人火锅套餐"]
    plain = api.post("/api/v1/statuses", {"status": "no deal here"}).json()
    assert plain["card"] is None


@pytest.mark.django_db(transaction=True)
def test_mastodon_py_reads_the_card(live_server: Any, merchant: Any) -> None:
    deal = live_deal(merchant)
    app = Mastodon.create_app("Weituan cards", scopes=["read"], api_base_url=live_server.url)
    client = Mastodon(client_id=app[0], client_secret=app[1], api_base_url=live_server.url)
    status = client.status(deal.post_id)
    assert status.card.title == "双人火锅套餐"
    assert status.card.url == f"{live_server.url}/deals/{deal.id}/"
