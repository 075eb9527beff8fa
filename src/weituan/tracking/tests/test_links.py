"""Short links: creation rules, the /s/<code> redirect, click recording and bot filtering."""

import pytest
from django.test import Client

from weituan.core.errors import ValidationFailed
from weituan.tracking import facade
from weituan.tracking.buffer import write_buffer
from weituan.tracking.clients import ip_anonymous
from weituan.tracking.models import ShortLink
from weituan.tracking.queries import link_click_counts
from weituan.tracking.tests.conftest import count

BROWSER = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"
DESKTOP = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/130.0 Safari/537.36"


@pytest.fixture
def share(db, shopper):
    return facade.short_link_for_share(
        sharer_id=shopper.pk, post_id=4242, target_url="https://weituan.example/deals/9?x=1#top",
        channel="microblog", hop_depth=2, deal_id=9,
    )  # fmt: skip


def clicks(link_id: int) -> dict[str, int]:
    write_buffer().flush()
    return link_click_counts(link_id)


def test_share_link_is_idempotent_and_unguessable(db, shopper, share):
    again = facade.short_link_for_share(
        sharer_id=shopper.pk, post_id=4242, target_url="https://weituan.example/deals/9?x=1#top",
        channel="microblog", hop_depth=2, deal_id=9,
    )  # fmt: skip
    assert again == share
    assert len(share.code) == 8 and share.code.isalnum()
    assert share.url.endswith(f"/s/{share.code}")
    other_hop = facade.short_link_for_share(
        sharer_id=shopper.pk + 1, post_id=4242, target_url="https://weituan.example/deals/9", hop_depth=3
    )
    assert other_hop.code != share.code and other_hop.hop_depth == 3
    assert ShortLink.objects.count() == 2


@pytest.mark.parametrize(
    "target",
    ["javascript:alert(1)", "data:text/html,hi", "//evil.example/x", "/relative", "ftp://files.example/a",
     "https:///nohost", "http://ok.example/\r\nSet-Cookie: a=b", ""],
)  # fmt: skip
def test_non_http_targets_are_refused_at_creation(db, target):
    with pytest.raises(ValidationFailed) as caught:
        facade.short_link_for_outbound(post_id=1, url=target)
    assert caught.value.code == "bad_target"
    assert ShortLink.objects.count() == 0


def test_redirect_is_immediate_sets_visitor_cookie_and_records_the_click(client: Client, share):
    response = client.get(f"/s/{share.code}", HTTP_USER_AGENT=BROWSER, HTTP_REFERER="https://weibo.com/u/1",
                          REMOTE_ADDR="203.0.113.77")  # fmt: skip
    assert response.status_code == 302
    assert response["Location"] == f"https://weituan.example/deals/9?x=1&wt_s={share.code}#top"
    assert response["Cache-Control"] == "no-store"
    cookie = response.cookies["wt_vid"]
    assert cookie["samesite"] == "Lax" and int(cookie["max-age"]) == 2 * 365 * 24 * 3600
    assert clicks(share.id) == {"counted": 1}
    from weituan.tracking.store import analytics_store

    row = analytics_store().query(
        "SELECT visitor_id, channel, medium, hop_depth, sharer_id, post_id, deal_id, device, ip, referrer_domain"
        " FROM events WHERE link_id = {l:UInt64}",
        {"l": share.id},
    )[0]
    assert row == {
        "visitor_id": cookie.value, "channel": "microblog", "medium": "repost", "hop_depth": 2,
        "sharer_id": share.sharer_id, "post_id": 4242, "deal_id": 9, "device": "mobile",
        "ip": "203.0.113.0", "referrer_domain": "weibo.com",
    }  # fmt: skip


def test_logged_in_click_links_the_visitor_to_the_user(client: Client, share, shopper):
    client.force_login(shopper)
    client.cookies["wt_vid"] = "visitor-abc-123"
    assert client.get(f"/s/{share.code}", HTTP_USER_AGENT=DESKTOP).status_code == 302
    write_buffer().flush()
    assert count("SELECT count() FROM identities WHERE alias_id = 'visitor-abc-123' AND person_id = {p:String}",
                 p=f"u:{shopper.pk}") == 1  # fmt: skip


def test_unknown_code_is_a_404_page_and_records_nothing(client: Client, share):
    for code in ("Zz9Zz9Zz", "bad-code!", "x" * 40):
        response = client.get(f"/s/{code}", HTTP_USER_AGENT=BROWSER)
        assert response.status_code == 404
        assert "wt_vid" not in response.cookies
    write_buffer().flush()
    assert count("SELECT count() FROM events") == 0


def test_outbound_link_redirects_to_the_exact_url(client: Client, db):
    link = facade.short_link_for_outbound(post_id=77, url="https://item.taobao.com/item.htm?id=1")
    response = client.get(f"/s/{link.code}", HTTP_USER_AGENT=DESKTOP)
    assert response["Location"] == "https://item.taobao.com/item.htm?id=1"
    assert clicks(link.id) == {"counted": 1}


def test_bots_head_and_prefetch_are_kept_flagged_and_not_counted(client: Client, share):
    url = f"/s/{share.code}"
    client.get(
        url, HTTP_USER_AGENT="Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
    )
    client.get(url, HTTP_USER_AGENT="Mozilla/5.0 (compatible; Baiduspider/2.0)")
    client.get(url, HTTP_USER_AGENT="facebookexternalhit/1.1")
    client.get(url, HTTP_USER_AGENT="")
    client.head(url, HTTP_USER_AGENT=BROWSER)
    client.get(url, HTTP_USER_AGENT=BROWSER, HTTP_SEC_PURPOSE="prefetch;prerender")
    client.get(url, HTTP_USER_AGENT=BROWSER, HTTP_PURPOSE="prefetch")
    client.get(url, HTTP_USER_AGENT=BROWSER, HTTP_X_MOZ="prefetch")
    assert clicks(share.id) == {"bot_user_agent": 3, "no_user_agent": 1, "head": 1, "prefetch": 3}


def test_one_counted_click_per_link_per_visitor_per_hour(client: Client, share, db):
    other = facade.short_link_for_share(sharer_id=5, post_id=6, target_url="https://weituan.example/d/6")
    client.cookies["wt_vid"] = "same-visitor-0001"
    for _ in range(3):
        assert client.get(f"/s/{share.code}", HTTP_USER_AGENT=BROWSER).status_code == 302
    client.get(f"/s/{other.code}", HTTP_USER_AGENT=BROWSER)
    second = Client()
    second.cookies["wt_vid"] = "another-visitor-02"
    second.get(f"/s/{share.code}", HTTP_USER_AGENT=BROWSER)
    assert clicks(share.id) == {"counted": 2, "duplicate": 2}
    assert clicks(other.id) == {"counted": 1}


def test_raw_ip_addresses_are_never_stored():
    assert ip_anonymous("198.51.100.23") == "198.51.100.0"
    assert ip_anonymous("2001:db8:abcd:12:1:2:3:4") == "2001:db8:abcd::"
    assert ip_anonymous("::ffff:192.0.2.9") == "192.0.2.0"
    assert ip_anonymous("not an ip") == ""
