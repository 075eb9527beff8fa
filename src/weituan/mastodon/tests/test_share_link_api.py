"""POST /api/v1/weituan/statuses/{id}/share_link: the caller's own short link to any post, per repost hop."""

from typing import Any

import pytest
from django.test import Client

from weituan.accounts.tokens import access_token_issue
from weituan.deals.tests.conftest import live_deal
from weituan.microblog.services.interactions import comment_create
from weituan.microblog.services.posts import post_create, post_delete, repost_create
from weituan.microblog.services.relations import block_create
from weituan.tracking.models import ShortLink

pytestmark = pytest.mark.django_db


def share(client: Client, post_id: int) -> Any:
    return client.post(f"/api/v1/weituan/statuses/{post_id}/share_link")


def test_each_hop_gets_its_own_link_made_once(
    api_as: Any, shopper: Any, merchant: Any, outsider: Any
) -> None:
    original = post_create(author=merchant, text="新品上架")
    hop1 = repost_create(reposter=shopper, post_id=original.id, comment="好看")
    hop2 = repost_create(reposter=outsider, post_id=hop1.id)
    client = api_as(outsider)

    first = share(client, hop2.id)
    assert first.status_code == 200, first.content
    body = first.json()
    link = ShortLink.objects.get(code=body["code"])
    assert body == {
        "code": link.code,
        "url": f"http://testserver/s/{link.code}",
        "post_id": str(hop2.id),
        "hop_depth": 2,
        "deal_id": None,
        "target_url": f"http://testserver/p/{hop2.id}",
    }
    assert (link.channel, link.sharer_id, link.post_id, link.hop_depth, link.deal_id) == (
        "microblog",
        outsider.pk,
        hop2.id,
        2,
        None,
    )
    assert share(client, hop2.id).json() == body  # idempotent per sharer and post
    mine = share(api_as(shopper), hop1.id).json()
    theirs = share(client, original.id).json()
    assert (mine["hop_depth"], theirs["hop_depth"]) == (1, 0)
    assert len({body["code"], mine["code"], theirs["code"]}) == 3
    assert ShortLink.objects.count() == 3

    # The link leads back to the post, credited to the hop.
    landing = Client().get(f"/s/{link.code}")
    assert landing.status_code == 302
    assert landing["Location"] == f"http://testserver/p/{hop2.id}?wt_s={link.code}"


def test_a_deal_post_and_its_reposts_lead_to_the_deal(api_as: Any, shopper: Any, merchant: Any) -> None:
    deal = live_deal(merchant)
    hop1 = repost_create(reposter=shopper, post_id=deal.post_id, comment="一起拼")
    body = share(api_as(shopper), hop1.id).json()
    assert (body["deal_id"], body["hop_depth"]) == (str(deal.id), 1)
    assert body["target_url"] == f"http://testserver/deals/{deal.id}/"
    assert ShortLink.objects.get(code=body["code"]).deal_id == deal.id


def test_unknown_invisible_and_unshareable_posts_are_refused_with_a_code(
    api_as: Any, shopper: Any, merchant: Any, outsider: Any
) -> None:
    original = post_create(author=merchant, text="新品上架")
    private = post_create(author=merchant, text="粉丝专享", visibility="private")
    remark = comment_create(author=shopper, post_id=original.id, text="好")
    gone = post_create(author=merchant, text="已删")
    post_delete(actor=merchant, post_id=gone.id)
    block_create(blocker=merchant, blocked_id=outsider.pk)
    client = api_as(shopper)

    def refused(answer: Any) -> tuple[int, str]:
        return answer.status_code, answer.json()["code"]

    assert refused(share(client, 999_999_999)) == (404, "not_found")
    assert refused(share(client, gone.id)) == (404, "not_found")
    assert refused(share(client, private.id)) == (404, "not_found")  # not a follower: not visible
    assert refused(share(api_as(outsider), original.id)) == (404, "not_found")  # blocked
    assert refused(share(client, remark.id)) == (422, "cannot_share_comment")
    client.post(f"/api/v1/accounts/{merchant.pk}/follow")
    assert refused(share(client, private.id)) == (403, "not_shareable")
    assert ShortLink.objects.count() == 0
    assert share(api_as(merchant), private.id).status_code == 200  # the author may share their own


def test_the_write_scope_is_required(shopper: Any, merchant: Any) -> None:
    post = post_create(author=merchant, text="新品上架")
    raw, _ = access_token_issue(user=shopper, scopes="read")
    answer = Client(HTTP_AUTHORIZATION=f"Bearer {raw}").post(f"/api/v1/weituan/statuses/{post.id}/share_link")
    assert answer.status_code == 403 and answer.json()["code"]
    assert Client().post(f"/api/v1/weituan/statuses/{post.id}/share_link").status_code == 401
    assert ShortLink.objects.count() == 0


def test_the_endpoint_is_in_the_openapi_document(client: Client) -> None:
    document = client.get("/api/v1/openapi.json").json()
    operation = document["paths"]["/api/v1/weituan/statuses/{status_id}/share_link"]["post"]
    assert {"200", "403", "404", "422"} <= set(operation["responses"])
    assert operation["security"]
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema["$ref"].endswith("/ShareLinkOut")
