"""A payment webhook sent as a multipart form: the provider's refusal, not a server error.

The NUL check parses a multipart form before the view (and lets its bytes go), so the raw body the
signature covers was gone by then: reading it raised, and the provider was answered 500.
"""

import pytest
from django.test import Client

from weituan.deals.models import Order

pytestmark = pytest.mark.django_db


def test_a_multipart_webhook_is_refused_as_unsigned(provider):
    answer = Client().post(
        "/api/v1/payments/card/webhook",
        data={"id": "evt_1", "type": "authorization.succeeded"},
        headers={"Webhook-Signature": "t=1,v1=00"},
    )

    assert answer.status_code == 400
    assert answer.json()["code"] == "bad_signature"
    assert Order.objects.count() == 0


def test_a_multipart_webhook_without_its_boundary_is_a_bad_request():
    answer = Client().post("/api/v1/payments/card/webhook", data=b"{}", content_type="multipart/form-data")

    assert answer.status_code == 400
    assert answer.json()["code"] == "bad_request"
