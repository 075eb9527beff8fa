"""A request Django cannot read (a multipart body without its boundary, more fields than allowed) is
answered 400 in the API's JSON under the APIs, with the site's page elsewhere."""

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def test_a_multipart_body_without_boundary_gets_the_api_error(api_as, shopper):
    answer = api_as(shopper).post(
        "/api/v1/wallet/top_up", data=b'{"amount": 100}', content_type="multipart/form-data"
    )

    assert answer.status_code == 400
    assert answer["Content-Type"].startswith("application/json")
    body = answer.json()
    assert body["code"] == "bad_request"
    assert body["error"].startswith("The request could not be read: Invalid boundary in multipart")


def test_too_many_fields_get_the_api_error(api_as, shopper, settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 3
    answer = api_as(shopper).post(
        "/api/v1/statuses", data="a=1&b=2&c=3&d=4&status=hi", content_type="application/x-www-form-urlencoded"
    )

    assert answer.status_code == 400
    assert answer.json()["code"] == "bad_request"


def test_pages_keep_their_error_page():
    answer = Client().post("/accounts/login", data=b"x", content_type="multipart/form-data")

    assert answer.status_code == 400
    assert answer["Content-Type"].startswith("text/html")
