"""A Mastodon parameter given in a shape it cannot have is refused (422), not read as something else:
an object, an array or true/false where text is read (which was stored as `{}`, `None`, `False` or
the array's first value), a parameter group that is not an object (whose parameters were read as left out), and a
notifications marker that is no id (which was accepted and moved nothing)."""

from typing import Any

import pytest

from weituan.core.ids import MAX_ID
from weituan.microblog.models import Post

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "note", [{}, [None, None], False, [{"a": 1}]], ids=["object", "nulls", "false", "objects"]
)
def test_text_that_is_no_text_is_refused(api_as: Any, shopper: Any, note: Any) -> None:
    shopper.bio = "原来的简介"
    shopper.save(update_fields=["bio"])

    response = api_as(shopper).patch(
        "/api/v1/accounts/update_credentials", {"note": note}, content_type="application/json"
    )

    assert (response.status_code, response.json()["error"]) == (422, "note must be text")
    shopper.refresh_from_db()
    assert shopper.bio == "原来的简介"


def test_a_number_is_read_as_its_digits(api_as: Any, shopper: Any) -> None:
    response = api_as(shopper).post("/api/v1/statuses", {"status": 12345}, content_type="application/json")

    assert response.status_code == 200
    assert Post.objects.get().text == "12345"


def test_a_status_as_an_object_is_refused(api_as: Any, shopper: Any) -> None:
    response = api_as(shopper).post(
        "/api/v1/statuses", {"status": {"text": "hi"}}, content_type="application/json"
    )

    assert (response.status_code, response.json()["error"]) == (422, "status must be text")
    assert not Post.objects.exists()


@pytest.mark.parametrize("source", [[None, None], "private", 3])
def test_a_source_that_is_not_an_object_is_refused(api_as: Any, shopper: Any, source: Any) -> None:
    before = shopper.default_privacy
    response = api_as(shopper).patch(
        "/api/v1/accounts/update_credentials", {"source": source}, content_type="application/json"
    )

    assert (response.status_code, response.json()["error"]) == (422, "source must be an object of parameters")
    shopper.refresh_from_db()
    assert shopper.default_privacy == before


@pytest.mark.parametrize("last_read_id", [-1, MAX_ID + 1, "-5"])
def test_a_notifications_marker_that_is_no_id_is_refused(
    api_as: Any, shopper: Any, last_read_id: Any
) -> None:
    client = api_as(shopper)

    def marker() -> tuple[str, int]:
        shown = client.get("/api/v1/markers?timeline[]=notifications").json()["notifications"]
        return shown["last_read_id"], shown["version"]

    before = marker()

    response = client.post(
        "/api/v1/markers", {"notifications": {"last_read_id": last_read_id}}, content_type="application/json"
    )

    assert (response.status_code, response.json()["code"]) == (422, "invalid_id")
    assert marker() == before


def test_markers_as_a_list_are_refused(api_as: Any, shopper: Any) -> None:
    response = api_as(shopper).post("/api/v1/markers", {"home": ["1"]}, content_type="application/json")

    assert (response.status_code, response.json()["error"]) == (422, "home must be an object of parameters")


@pytest.mark.parametrize("path", ["/api/v1/timelines/public", "/api/v1/timelines/tag/团购"])
def test_a_wrong_only_media_is_refused_even_with_remote(api_as: Any, shopper: Any, path: str) -> None:
    response = api_as(shopper).get(f"{path}?remote=1&only_media=15949904")

    assert (response.status_code, response.json()["error"]) == (422, "only_media must be true or false")
