"""A deal's whole story in Chromium at phone size: a merchant publishes it from the deal editor, a shopper
reposts it and takes their own share link, a friend follows that link, buys, and the deal tips; the friend
sees the voucher and the merchant redeems it, once."""

import re
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.utils import timezone

from weituan.core.testing import make_user
from weituan.deals.models import Deal, Order, Voucher
from weituan.deals.services.wallet import wallet_top_up
from weituan.deals.views import SHARE_SESSION_KEY
from weituan.microblog.models import Post, PostKind
from weituan.tracking import facade as tracking
from weituan.tracking.models import ShortLink

PHONE = {"viewport": {"width": 390, "height": 844}, "locale": "zh-CN"}
PASSWORD = "a long enough secret 42"
# The friend taps the link on a phone; headless Chromium's own user agent is rightly counted as a bot.
PHONE_BROWSER = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Mobile Safari/537.36"
)


def _context(browser: Any, **options: Any) -> tuple[Any, Any]:
    context = browser.new_context(**PHONE, **options)
    context.set_default_timeout(15_000)
    return context, context.new_page()


def _log_in(page: Any, base_url: str, username: str) -> None:
    form = page.locator("form[action^='/accounts/login']")
    form.locator("[name=username]").fill(username)
    form.locator("[name=password]").fill(PASSWORD)
    form.locator("button[type=submit]").click()


def _local_input(moment: Any) -> str:
    """A moment as a datetime-local field wants it, in the site's time zone."""
    return timezone.localtime(moment).strftime("%Y-%m-%dT%H:%M")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_reposted_deal_is_bought_through_the_reposters_link_and_redeemed(
    live_server: Any, browser: Any
) -> None:
    from playwright.sync_api import expect

    base = live_server.url
    merchant = make_user("dumpling_house", display_name="小笼包馆", merchant=True, password=PASSWORD)
    shopper = make_user("meimei", display_name="美美", password=PASSWORD)
    friend = make_user("dazhuang", display_name="大壮", password=PASSWORD)
    merchant_context, merchant_page = _context(browser)
    shopper_context, shopper_page = _context(browser)
    friend_context, friend_page = _context(browser, user_agent=PHONE_BROWSER)
    try:
        # 1. The merchant writes the deal in the deal editor and publishes it.
        merchant_page.goto(f"{base}/accounts/login?next=/merchant/deals/new")
        _log_in(merchant_page, base, "dumpling_house")
        merchant_page.wait_for_url(f"{base}/merchant/deals/new")
        editor = merchant_page.locator("form:has([name=title])")
        now = timezone.now()
        fields = {
            "title": "蟹粉小笼包双人餐",
            "description": "两笼蟹粉小笼，两碗鸡汤",
            "list_price": "128",
            "deal_price": "68",
            "tipping_point": "1",
            "max_quantity": "20",
            "per_user_limit": "1",
            "starts_at": _local_input(now - timedelta(minutes=5)),
            "ends_at": _local_input(now + timedelta(days=2)),
        }
        for name, value in fields.items():
            editor.locator(f"[name={name}]").fill(value)
        editor.locator("button[type=submit]").click()
        merchant_page.wait_for_url(re.compile(r"/merchant/deals/\d+/$"))
        deal = Deal.objects.get(title="蟹粉小笼包双人餐")
        assert (deal.state, deal.deal_price, deal.tipping_point, deal.post_id) == ("draft", 6800, 1, None)
        publish = merchant_page.locator(f"form[action='/merchant/deals/{deal.id}/publish']")
        # Publishing cannot be undone (a published deal is not edited): asked first; no, then yes.
        asked: list[str] = []

        def declined(dialog: Any) -> None:
            asked.append(dialog.message)
            dialog.dismiss()

        merchant_page.once("dialog", declined)
        publish.locator("button").click()
        assert asked == ["团购发布后就不能再修改了。现在发布吗？"]
        assert Deal.objects.get(id=deal.id).state == "draft"
        merchant_page.once("dialog", lambda dialog: dialog.accept())
        publish.locator("button").click()
        expect(publish).to_have_count(0)
        deal.refresh_from_db()
        assert deal.state == "live"
        assert deal.post_id is not None
        deal_post = Post.objects.get(id=deal.post_id)
        assert (deal_post.author.username, deal_post.deal_id) == ("dumpling_house", deal.id)

        # 2. The shopper reposts the deal post from the merchant's page, with the card's repost form.
        shopper_page.goto(f"{base}/accounts/login?next=/@dumpling_house")
        _log_in(shopper_page, base, "meimei")
        shopper_page.wait_for_url(f"{base}/@dumpling_house")
        card = shopper_page.locator(f"#post-{deal_post.id}")
        expect(card.locator(".deal-card")).to_contain_text("蟹粉小笼包双人餐")
        # The card's countdown ticks each second, Pinduoduo style.
        countdown = card.locator(".deal-card time[data-countdown]")
        expect(countdown).to_have_text(re.compile(r"^\d+天 \d{2}:\d{2}:\d{2}$"))
        shown = countdown.text_content()
        expect(countdown).not_to_have_text(shown or "", timeout=3000)
        assert shopper_page.evaluate("window.weituanCountdownText(90061)") == "1天 01:01:01"
        assert shopper_page.evaluate("window.weituanCountdownText(59)") == "00:00:59"
        card.locator(".action-repost").click()
        card.locator("[data-panel=repost] textarea").fill("一起拼小笼包！")
        card.locator("[data-panel=repost] button[type=submit]").click()
        expect(shopper_page.locator("#flash")).to_contain_text("已转发")
        repost = Post.objects.get(kind=PostKind.REPOST, parent_id=deal_post.id)
        assert (repost.author_id, repost.depth, repost.deal_id) == (shopper.id, 1, deal.id)

        # Drawing cards made no links; the shopper's own link is made when they open the share control.
        shopper_page.goto(f"{base}/@meimei")
        repost_card = shopper_page.locator(f"#post-{repost.id}")
        expect(repost_card).to_contain_text("一起拼小笼包！")
        assert not ShortLink.objects.filter(sharer_id=shopper.id).exists()
        share = repost_card.locator(".action-share")
        expect(share).to_have_text("分享链接")
        share.click()
        short_url = repost_card.locator(".share-slot .share-url")
        expect(short_url).to_have_value(re.compile(rf"^{re.escape(base)}/s/[0-9A-Za-z]+$"))
        code = short_url.input_value().rsplit("/", 1)[1]
        assert ShortLink.objects.filter(sharer_id=shopper.id).count() == 1
        # The link is the shopper's, for their hop, and asking again gives the same one.
        link = tracking.short_link_for_share(
            sharer_id=shopper.id,
            post_id=repost.id,
            target_url=f"{base}/deals/{deal.id}/",
            hop_depth=1,
            deal_id=deal.id,
        )
        assert (link.code, link.sharer_id, link.post_id, link.hop_depth, link.deal_id, link.channel) == (
            code,
            shopper.id,
            repost.id,
            1,
            deal.id,
            "microblog",
        )
        assert link.target_url == f"{base}/deals/{deal.id}/"

        # 3. The friend follows the shopper's link, lands on the deal page, logs in and buys.
        friend_page.goto(f"{base}/s/{code}")
        friend_page.wait_for_url(f"{base}/deals/{deal.id}/?wt_s={code}")
        expect(friend_page.locator("h1")).to_have_text("蟹粉小笼包双人餐")
        visitor_id = next(c["value"] for c in friend_context.cookies() if c["name"] == "wt_vid")
        tracking.events_flush()
        clicks = tracking.store_query(
            "SELECT count() AS n, any(sharer_id) AS sharer, any(hop_depth) AS hop, any(channel) AS channel, "
            "any(device) AS device "
            "FROM events WHERE event = 'link_click' AND link_id = {link:UInt64} AND visitor_id = {visitor:String} "
            "AND is_bot = 0",
            {"link": link.id, "visitor": visitor_id},
        )
        assert [
            (int(r["n"]), int(r["sharer"]), int(r["hop"]), r["channel"], r["device"]) for r in clicks
        ] == [(1, shopper.id, 1, "microblog", "mobile")]

        friend_page.get_by_role("link", name="登录后购买").click()
        _log_in(friend_page, base, "dazhuang")
        friend_page.wait_for_url(f"{base}/deals/{deal.id}/")
        session_key = next(c["value"] for c in friend_context.cookies() if c["name"] == "sessionid")
        assert SessionStore(session_key=session_key).load()[SHARE_SESSION_KEY] == {str(deal.id): code}

        wallet_top_up(user=friend, amount=10_000)
        friend_page.reload()
        friend_page.locator(f"form[action='/deals/{deal.id}/checkout'] button[type=submit]").first.click()
        friend_page.wait_for_url(f"{base}/me/orders/")

        # 4. That buy reached the tipping point: the deal tipped, the hold was captured, the voucher issued.
        deal.refresh_from_db()
        order = Order.objects.get(deal=deal, buyer=friend)
        assert (deal.state, deal.sold, order.state, order.amount) == ("tipped", 1, "captured", 6800)
        # ...and it is credited to the shopper's repost link the friend came through.
        assert (order.share_code, order.share_link_id) == (code, ShortLink.objects.get(code=code).id)
        voucher = Voucher.objects.get(holder=friend, deal=deal)
        friend_page.goto(f"{base}/me/vouchers/")
        shown = friend_page.locator(".voucher")
        expect(shown).to_have_count(1)
        expect(shown).to_contain_text("蟹粉小笼包双人餐")
        expect(shown.locator("img[alt=券的二维码]")).to_be_visible()
        displayed = shown.locator(".voucher-code").inner_text()
        assert displayed.replace("-", "") == voucher.code.replace("-", "")

        # 5. The merchant redeems the code the friend shows; a second try says when and by whom.
        merchant_page.goto(f"{base}/merchant/redeem")
        redeem = merchant_page.locator("form:has([name=code])")
        redeem.locator("[name=code]").fill(displayed)
        redeem.locator("button[type=submit]").click()
        expect(merchant_page.locator("p.ok")).to_have_text("✔ 蟹粉小笼包双人餐 · @dazhuang")
        voucher.refresh_from_db()
        assert (voucher.state, voucher.redeemed_by_id) == ("redeemed", merchant.id)
        redeemed_at = timezone.localtime(voucher.redeemed_at).strftime("%Y-%m-%d %H:%M")

        redeem.locator("[name=code]").fill(displayed)
        redeem.locator("button[type=submit]").click()
        expect(merchant_page.locator("#messages")).to_contain_text(
            f"该券已于 {redeemed_at} 由 @dumpling_house 核销"  # when and by whom, in the page's language
        )
        expect(merchant_page.locator("p.ok")).to_have_count(0)
        voucher.refresh_from_db()
        assert (voucher.state, voucher.redeemed_by_id) == ("redeemed", merchant.id)
    finally:
        merchant_context.close()
        shopper_context.close()
        friend_context.close()
