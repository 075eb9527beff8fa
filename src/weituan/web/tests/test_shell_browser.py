import pytest


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_home_page_renders_in_chromium_with_htmx_loaded(live_server, phone_page):
    phone_page.goto(live_server.url + "/")
    assert "微团" in phone_page.title()
    phone_page.wait_for_function("() => window.htmx !== undefined")
    assert phone_page.evaluate("() => document.documentElement.scrollWidth") <= 390
