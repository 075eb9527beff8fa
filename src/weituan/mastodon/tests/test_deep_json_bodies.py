"""A JSON body nested deeper than the parser goes (or deep enough to overflow a recursive reader) is
bad input: the API's 422 `invalid_json` (OAuth's `invalid_request`), never a server error, and nothing
is written."""

from typing import Any

import pytest
from django.test import Client

from weituan.microblog.models import Post

pytestmark = pytest.mark.django_db

DEEP_ARRAY = b"[" * 100_000 + b"]" * 100_000
DEEP_ARRAY_WITH_NUL = b"[" * 100_000 + b'"\\u0000"' + b"]" * 100_000
DEEP_OBJECT = b'{"a":' * 5_000 + b"1" + b"}" * 5_000


@pytest.mark.parametrize("body", [DEEP_ARRAY, DEEP_ARRAY_WITH_NUL], ids=["array", "array-with-nul"])
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/api/v1/statuses"),
        ("post", "/api/v1/markers"),
        ("post", "/api/v1/apps"),
        ("patch", "/api/v1/accounts/update_credentials"),
    ],
)
def test_too_deep_a_body_is_not_json(api_as: Any, shopper: Any, method: str, path: str, body: bytes) -> None:
    response = getattr(api_as(shopper), method)(path, body, content_type="application/json")

    assert response.status_code == 422
    assert response.json() == {"error": "The request body is not valid JSON", "code": "invalid_json"}
    assert not Post.objects.exists()


def test_deep_objects_are_read_as_their_bracketed_names(api_as: Any, shopper: Any) -> None:
    response = api_as(shopper).post("/api/v1/statuses", DEEP_OBJECT, content_type="application/json")

    assert (response.status_code, response.json()["code"]) == (422, "empty_post")
    assert not Post.objects.exists()


def test_the_token_endpoint_refuses_too_deep_a_body() -> None:
    response = Client().post("/oauth/token", DEEP_ARRAY, content_type="application/json")

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
