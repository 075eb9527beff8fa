"""The addresses the API gives statuses and accounts open their pages in a browser."""

from typing import Any
from urllib.parse import urlsplit

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def test_a_status_url_and_its_account_url_open_their_pages(api_as: Any, merchant: Any, outsider: Any) -> None:
    posted = api_as(merchant).post("/api/v1/statuses", {"status": "今晚 8 点开团"})
    assert posted.status_code == 200, posted.content
    status = posted.json()
    assert status["url"] == status["uri"]
    browser = Client()
    page = browser.get(urlsplit(status["url"]).path, follow=True)
    assert page.status_code == 200
    assert page.redirect_chain == [(f"/p/{status['id']}", 301)]
    assert "今晚 8 点开团" in page.content.decode()
    profile = browser.get(urlsplit(status["account"]["url"]).path)
    assert profile.status_code == 200

    # Another author's name with the id, or an id that is no post, is no page.
    assert browser.get(f"/@{outsider.username}/{status['id']}").status_code == 404
    assert browser.get(f"/@{merchant.username}/{int(status['id']) + 1}").status_code == 404
