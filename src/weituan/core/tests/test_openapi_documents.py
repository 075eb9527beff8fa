"""The OpenAPI documents say what the API answers: every operation's refusals in the error shape,
which operations let anonymous callers in, and the values the services accept."""

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db

ERROR_REF = {"$ref": "#/components/schemas/ErrorOut"}


def _document(version: str) -> dict:
    return Client().get(f"/api/{version}/openapi.json").json()


def _operations(document: dict):
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            yield f"{method.upper()} {path}", operation


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_every_operation_documents_its_refusals(version):
    document = _document(version)

    assert document["components"]["schemas"]["ErrorOut"]["required"] == ["error", "code"]
    for label, operation in _operations(document):
        for status in ("4XX", "503"):
            schema = operation["responses"][status]["content"]["application/json"]["schema"]
            assert schema == ERROR_REF, label


def test_anonymous_callers_are_documented_where_they_are_let_in():
    operations = dict(_operations(_document("v1")))

    assert {} in operations["GET /api/v1/search"]["security"]
    assert {} in operations["GET /api/v1/timelines/public"]["security"]
    assert {} not in operations["GET /api/v1/preferences"]["security"]
    assert {} not in operations["POST /api/v1/statuses"]["security"]


def test_accepted_values_are_documented():
    document = _document("v1")
    schemas = document["components"]["schemas"]
    operations = dict(_operations(document))

    currencies = ["CNY", "EUR", "GBP", "HKD", "JPY", "KRW", "TWD", "USD"]
    assert schemas["DealIn"]["properties"]["currency"]["enum"] == currencies
    assert schemas["TopUpIn"]["properties"]["currency"]["enum"] == currencies
    assert schemas["TopUpIn"]["properties"]["amount"]["maximum"] == 10_000_000
    wallet = {p["name"]: p for p in operations["GET /api/v1/wallet"]["parameters"]}
    assert wallet["currency"]["schema"]["enum"] == currencies
    search = {p["name"]: p for p in operations["GET /api/v1/search"]["parameters"]}
    assert search["max_id"]["schema"]["pattern"] == "^[0-9]*$"
    assert schemas["KeyIn"]["properties"]["name"]["maxLength"] == 100
    streaming = operations["GET /api/v1/streaming"]["responses"]
    assert set(streaming["501"]["content"]["application/json"]["schema"]["$ref"].split("/")[-1:]) == {
        "StreamingRefusalOut"
    }


@pytest.mark.parametrize(
    "label",
    ["GET /api/v1/timelines/home", "GET /api/v1/accounts/{account_id}/followers", "GET /api/v1/favourites"],
)
def test_paged_lists_document_their_paging(label):
    parameters = {p["name"]: p["schema"] for p in dict(_operations(_document("v1")))[label]["parameters"]}

    assert parameters["limit"]["anyOf"] == [
        {"type": "integer", "minimum": 1},
        {"type": "string", "enum": [""]},
    ]
    for cursor in ("max_id", "since_id", "min_id"):
        assert parameters[cursor] == {"type": "string", "pattern": "^[0-9]*$"}


def test_path_ids_are_bounded_as_ids():
    operations = dict(_operations(_document("v1")))
    (account_id,) = operations["POST /api/v1/accounts/{account_id}/follow"]["parameters"]

    assert (account_id["schema"]["minimum"], account_id["schema"]["maximum"]) == (0, 2**63 - 1)


def test_mastodon_writes_document_the_parameters_they_read():
    operations = dict(_operations(_document("v1")))
    status = operations["POST /api/v1/statuses"]["requestBody"]["content"]["application/json"]["schema"]
    policy = operations["PUT /api/v1/statuses/{status_id}/interaction_policy"]["requestBody"]

    assert {"status", "media_ids", "in_reply_to_id", "quoted_status_id", "visibility"} <= set(
        status["properties"]
    )
    assert status["properties"]["visibility"]["anyOf"][0]["enum"] == ["public", "unlisted", "private"]
    assert policy["required"] is True
    assert policy["content"]["application/json"]["schema"]["required"] == ["quote_approval_policy"]


def test_mastodon_reads_document_their_query_parameters():
    operations = dict(_operations(_document("v1")))

    def names(label: str) -> set[str]:
        return {p["name"] for p in operations[label]["parameters"]}

    assert {"types[]", "exclude_types[]", "account_id", "limit", "max_id"} <= names(
        "GET /api/v1/notifications"
    )
    assert {"any[]", "all[]", "none[]", "only_media", "limit"} <= names("GET /api/v1/timelines/tag/{hashtag}")
    assert names("GET /api/v1/accounts/relationships") == {"id[]"}
