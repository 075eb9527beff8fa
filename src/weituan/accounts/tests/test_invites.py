"""Invite links as accounts sees them: the inviter a browser brought is handed on, once, to the apps
named in ACCOUNTS_INVITATION_HANDLERS when the person signs up or logs in."""

from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from weituan.accounts.invites import INVITER_SESSION_KEY, inviter_by_code
from weituan.accounts.models import User
from weituan.accounts.tests import invitation_probe
from weituan.core.testing import make_user

pytestmark = pytest.mark.django_db

PROBE = "weituan.accounts.tests.invitation_probe"
PASSWORD = "a long passphrase"


@pytest.fixture(autouse=True)
def handlers(settings: Any) -> Iterator[list[Any]]:
    settings.ACCOUNTS_INVITATION_HANDLERS = [f"{PROBE}.fail", f"{PROBE}.keep"]
    invitation_probe.received.clear()
    yield invitation_probe.received
    invitation_probe.received.clear()


def _with_inviter(client: Client, inviter_id: Any) -> None:
    session = client.session
    session[INVITER_SESSION_KEY] = inviter_id
    session.save()


def _sign_up(client: Client, username: str) -> Any:
    return client.post(
        reverse("accounts:signup"),
        {
            "username": username,
            "email": f"{username}@example.test",
            "password1": PASSWORD,
            "password2": PASSWORD,
        },
    )


def test_a_sign_up_hands_the_invitation_on_once_even_past_a_failing_handler(
    client: Client, shopper: User, handlers: list[Any]
) -> None:
    _with_inviter(client, shopper.pk)
    assert _sign_up(client, "newcomer").status_code == 302
    newcomer = User.objects.get(username="newcomer")
    assert [(i.inviter_id, i.invitee.pk, i.new_account) for i in handlers] == [
        (shopper.pk, newcomer.pk, True)
    ]
    assert INVITER_SESSION_KEY not in client.session
    client.post(reverse("accounts:logout"))
    client.post(reverse("accounts:login"), {"username": "newcomer", "password": PASSWORD})
    assert len(handlers) == 1


def test_a_log_in_hands_on_an_existing_account(client: Client, shopper: User, handlers: list[Any]) -> None:
    existing = make_user("existing")
    _with_inviter(client, shopper.pk)
    response = client.post(
        reverse("accounts:login"), {"username": "existing", "password": "correct horse battery"}
    )
    assert response.status_code == 302
    assert [(i.inviter_id, i.invitee.pk, i.new_account) for i in handlers] == [
        (shopper.pk, existing.pk, False)
    ]


def test_no_invitation_from_oneself_a_gone_inviter_or_a_bad_session_value(
    client: Client, shopper: User, handlers: list[Any]
) -> None:
    _with_inviter(client, shopper.pk)
    client.post(reverse("accounts:login"), {"username": "alice", "password": "correct horse battery"})
    client.post(reverse("accounts:logout"))
    gone = make_user("gone", is_active=False)
    for index, value in enumerate((gone.pk, "not a number", 10**9)):
        other = Client()
        _with_inviter(other, value)
        assert _sign_up(other, f"joiner{index}").status_code == 302
        assert INVITER_SESSION_KEY not in other.session
    assert handlers == []


def test_the_invite_code_is_the_inviters_name(shopper: User) -> None:
    make_user("retired", is_active=False)
    assert inviter_by_code("ALICE") == shopper
    assert inviter_by_code("@alice") == shopper
    assert [inviter_by_code(code) for code in ("", None, "retired", "nobody")] == [None] * 4
