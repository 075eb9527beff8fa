"""Development mail on the console reads as written: a Chinese password reset shows its link whole."""

import io
import re
from typing import Any

import pytest

from weituan.accounts.password_reset import password_reset_mail_send
from weituan.core.testing import make_user
from weituan.core.tests.test_settings_profiles import run_weituan

pytestmark = pytest.mark.django_db


def test_a_chinese_reset_mail_prints_its_subject_text_and_link_unencoded(settings: Any) -> None:
    stream = io.StringIO()
    settings.SITE_URL = "http://127.0.0.1:8000"
    settings.MAILERS = {
        "default": {"BACKEND": "weituan.core.console_mail.ConsoleEmailBackend", "OPTIONS": {"stream": stream}}
    }
    make_user("xiaoming", locale="zh-hans")

    assert password_reset_mail_send(email="xiaoming@example.test", language="en") == 1

    printed = stream.getvalue()
    assert "Content-Transfer-Encoding: 8bit" in printed
    assert "Subject: 重置你在 " in printed
    assert "xiaoming，你好：" in printed
    links = re.findall(r"^http://127\.0\.0\.1:8000/accounts/reset/[\w-]+/[\w-]+/$", printed, re.MULTILINE)
    assert len(links) == 1
    assert printed.endswith("\n" + "-" * 79 + "\n")


def test_the_dev_profile_prints_mail_with_that_backend(tmp_path: Any) -> None:
    result = run_weituan(
        tmp_path,
        "shell",
        "--no-imports",
        "-c",
        "from django.conf import settings; print(settings.MAILERS['default']['BACKEND'])",
        WEITUAN_PROFILE="dev",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "weituan.core.console_mail.ConsoleEmailBackend\n"
