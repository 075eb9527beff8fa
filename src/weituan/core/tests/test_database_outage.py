"""A database connection that ends in the middle of a request: the reader is told to try again (503 with a
code and Retry-After), not that the server failed."""

from typing import Any

import pytest
from django.db import OperationalError
from django.test import Client

from weituan.mastodon import api_timelines
from weituan.web import views

pytestmark = pytest.mark.django_db


def _cut(*args: Any, **kwargs: Any) -> Any:
    raise OperationalError("consuming input failed: server closed the connection unexpectedly")


def test_an_api_read_whose_connection_ends_is_a_503_with_a_code(
    monkeypatch: pytest.MonkeyPatch, shopper: Any, api_as: Any
) -> None:
    monkeypatch.setattr(api_timelines, "public_timeline_ids", _cut)

    response = api_as(shopper).get("/api/v1/timelines/public")

    assert response.status_code == 503
    assert response.json() == {
        "error": "The service is briefly unavailable; try again in a few seconds",
        "code": "unavailable",
    }
    assert response["Retry-After"] == "5"


def test_a_page_whose_connection_ends_says_to_try_again(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(views, "public_timeline_ids", _cut)

    response = Client(raise_request_exception=False, HTTP_ACCEPT_LANGUAGE="en").get("/")

    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert "Briefly unavailable" in response.content.decode()
