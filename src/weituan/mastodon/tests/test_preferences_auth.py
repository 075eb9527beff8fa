"""GET /api/v1/preferences is the caller's own: without a user it is refused, never a server error."""

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def test_preferences_without_a_token_are_refused():
    answer = Client().get("/api/v1/preferences")

    assert answer.status_code == 401
    assert answer.json() == {"error": "The access token is invalid or missing", "code": "unauthorized"}


def test_preferences_of_the_caller(api_as, shopper):
    answer = api_as(shopper).get("/api/v1/preferences")

    assert answer.status_code == 200
    assert answer.json()["posting:default:visibility"] == shopper.default_privacy
