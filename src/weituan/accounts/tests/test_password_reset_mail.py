"""The password reset e-mail: sent by a background task, never inside the request, in the account's
language; through a real SMTP server on loopback."""

import re
import socket
from collections.abc import Iterator
from email.header import decode_header, make_header
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django_tasks_db.models import DBTaskResult

from weituan.accounts.models import User
from weituan.accounts.tasks import password_reset_mail_task

pytestmark = pytest.mark.django_db

RESET = reverse("accounts:password_reset")


def _subject_and_body(message: Any) -> tuple[str, str]:
    subject = str(make_header(decode_header(message["Subject"])))
    return subject, message.get_payload(decode=True).decode(message.get_content_charset() or "utf-8")


def _runs() -> list[DBTaskResult]:
    return list(
        DBTaskResult.objects.filter(task_path=password_reset_mail_task.module_path).order_by("enqueued_at")
    )


@pytest.fixture
def silent_mail_server(settings: Any) -> Iterator[socket.socket]:
    """A mail server that takes connections and never answers: a request that waits for it would hang
    until the SMTP timeout. Connections it was sent wait in its backlog, so a test can count them."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        server.setblocking(False)
        settings.MAILERS = {
            "default": {
                "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
                "OPTIONS": {"host": "127.0.0.1", "port": server.getsockname()[1], "timeout": 1},
            }
        }
        yield server


def _connections_made(server: socket.socket) -> int:
    made = 0
    while True:
        try:
            connection, _ = server.accept()
        except BlockingIOError:
            return made
        connection.close()
        made += 1


@pytest.fixture
def queued_tasks(settings: Any) -> None:
    """Tasks are kept in the database for a worker, as in production, instead of run at once."""
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}


def test_asking_answers_alike_for_known_and_unknown_addresses_and_mails_from_a_task(
    shopper: User, queued_tasks: None, smtp_inbox: Any, run_on_commit: Any
) -> None:
    with run_on_commit():
        known = Client().post(RESET, {"email": "Alice@Example.test"}, HTTP_ACCEPT_LANGUAGE="en")
        unknown = Client().post(RESET, {"email": "nobody@example.test"}, HTTP_ACCEPT_LANGUAGE="en")
    assert (known.status_code, known["Location"]) == (302, reverse("accounts:password_reset_done"))
    assert (unknown.status_code, unknown["Location"]) == (known.status_code, known["Location"])
    assert known.content == unknown.content
    # Nothing was sent inside either request: each left one run for the worker, of the same kind.
    assert smtp_inbox.messages == []
    runs = _runs()
    assert [run.task_result.args for run in runs] == [
        ["Alice@Example.test", "en"],
        ["nobody@example.test", "en"],
    ]

    # The worker sends the known address its link, and the unknown one nothing.
    assert [run.task.call(*run.task_result.args) for run in runs] == [1, 0]
    message = smtp_inbox.wait(1)[0]
    assert message["To"] == "alice@example.test"
    _, body = _subject_and_body(message)
    path = re.search(r"https?://[^/\s]+(/accounts/reset/[^\s]+/)", body).group(1)  # type: ignore[union-attr]

    # The token made by the task works as one made in the request did.
    client = Client()
    form_url = client.get(path)["Location"]
    done = client.post(
        form_url, {"new_password1": "brand new secret 9", "new_password2": "brand new secret 9"}
    )
    assert done["Location"] == reverse("accounts:password_reset_complete")
    shopper.refresh_from_db()
    assert shopper.check_password("brand new secret 9")
    assert len(smtp_inbox.messages) == 1


def test_the_request_never_waits_on_the_mail_server(
    shopper: User, queued_tasks: None, silent_mail_server: socket.socket, run_on_commit: Any
) -> None:
    with run_on_commit():
        response = Client().post(RESET, {"email": "alice@example.test"})
    assert response.status_code == 302
    assert _connections_made(silent_mail_server) == 0
    assert len(_runs()) == 1


@pytest.mark.parametrize(
    ("locale", "browser", "subject"),
    [
        ("en", "zh-CN,zh;q=0.9", "Reset your password on Weituan 微团"),
        ("zh-hans", "en-US,en;q=0.9", "重置你在 Weituan 微团 的密码"),
        ("", "en-US,en;q=0.9", "Reset your password on Weituan 微团"),
        ("", "zh-CN,zh;q=0.9", "重置你在 Weituan 微团 的密码"),
    ],
)
def test_the_mail_is_in_the_accounts_language_else_the_requests(
    shopper: User,
    smtp_inbox: Any,
    run_on_commit: Any,
    settings: Any,
    locale: str,
    browser: str,
    subject: str,
) -> None:
    settings.SITE_NAME = "Weituan 微团"
    shopper.locale = locale
    shopper.save(update_fields=["locale"])
    with run_on_commit():
        page = Client().post(RESET, {"email": "alice@example.test"}, HTTP_ACCEPT_LANGUAGE=browser)
    assert page.status_code == 302
    got_subject, body = _subject_and_body(smtp_inbox.wait(1)[0])
    assert got_subject == subject
    english = subject.startswith("Reset")
    assert ("Your username is @alice." in body) is english
    assert ("@alice" in body) is True
