"""The /collect.js beacon in Chromium: a page view is sent and stored, and nothing at all is sent when the
browser says Do-Not-Track or Global Privacy Control."""

import json
from typing import Any

import pytest

from weituan.tracking.buffer import write_buffer
from weituan.tracking.store import analytics_store

PHONE_BROWSER = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Mobile Safari/537.36"
)
# A shop's page carrying the beacon, served at the live server's origin so the script and /collect are
# the real ones.
PAGE = '<!doctype html><html><head><title>小店</title><script src="/collect.js"></script></head><body></body></html>'
OPT_OUTS = {
    "do not track": "Object.defineProperty(Navigator.prototype, 'doNotTrack', {get: () => '1'});",
    "global privacy control": "Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', {get: () => true});",
}


def _shop_page(browser: Any, base: str, init_script: str = "") -> tuple[Any, Any, list[Any]]:
    context = browser.new_context(user_agent=PHONE_BROWSER)
    context.set_default_timeout(15_000)
    if init_script:
        context.add_init_script(init_script)
    page = context.new_page()
    page.route(
        f"{base}/shop/page", lambda route: route.fulfill(status=200, content_type="text/html", body=PAGE)
    )
    beacons: list[Any] = []
    page.on("request", lambda request: beacons.append(request) if request.url == f"{base}/collect" else None)
    return context, page, beacons


def _settle(page: Any, base: str) -> None:
    """Wait until a beacon sent after every one the page may have sent has reached the server."""
    with page.expect_response(f"{base}/collect.js?settled=1"):
        page.evaluate(f"navigator.sendBeacon('{base}/collect.js?settled=1', '')")


def _stored_page_views() -> list[dict[str, Any]]:
    write_buffer().flush()
    return analytics_store().query(
        "SELECT event, url, referrer, origin, device, is_bot FROM events ORDER BY ts"
    )


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_beacon_sends_one_page_view_per_page(live_server: Any, browser: Any) -> None:
    base = live_server.url
    context, page, beacons = _shop_page(browser, base)
    try:
        with page.expect_response(f"{base}/collect") as answered:
            page.goto(f"{base}/shop/page", referer="https://www.douban.com/group/1")
        assert answered.value.status == 204
        _settle(page, base)
        assert len(beacons) == 1
        assert json.loads(beacons[0].post_data) == {
            "event": "pageview",
            "url": f"{base}/shop/page",
            "referrer": "https://www.douban.com/group/1",
            "props": {},
        }
    finally:
        context.close()
    assert _stored_page_views() == [
        {"event": "pageview", "url": f"{base}/shop/page", "referrer": "https://www.douban.com/group/1",
         "origin": "beacon", "device": "mobile", "is_bot": 0},
    ]  # fmt: skip


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("opt_out", OPT_OUTS.values(), ids=OPT_OUTS.keys())
def test_the_beacon_sends_nothing_when_the_browser_opts_out(
    live_server: Any, browser: Any, opt_out: str
) -> None:
    base = live_server.url
    context, page, beacons = _shop_page(browser, base, init_script=opt_out)
    try:
        page.goto(f"{base}/shop/page", referer="https://www.douban.com/group/1")
        page.evaluate("window.wtTrack('deal_share'); history.pushState({}, '', '/shop/other')")
        _settle(page, base)
        assert beacons == []
    finally:
        context.close()
    assert _stored_page_views() == []
