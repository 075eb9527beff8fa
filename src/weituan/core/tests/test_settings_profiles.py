"""Settings come from the environment; bad values stop start-up, production passes the deploy checks."""

import os
import secrets
import subprocess
import sys

import pytest


def run_weituan(tmp_path, *args, **env):
    ours = ("WEITUAN_", "DATABASE_URL", "REDIS_URL", "DJANGO_ALLOW_ASYNC_UNSAFE")
    clean = {k: v for k, v in os.environ.items() if not k.startswith(ours)}
    clean.update({"WEITUAN_DATA_DIR": str(tmp_path), **env})
    return subprocess.run(
        [sys.executable, "-m", "weituan.cli", *args], env=clean, capture_output=True, text=True, timeout=120
    )


def test_production_profile_passes_check_deploy(tmp_path):
    result = run_weituan(
        tmp_path,
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        WEITUAN_PROFILE="production",
        WEITUAN_SECRET_KEY=secrets.token_urlsafe(60),
        WEITUAN_ALLOWED_HOSTS="weituan.example.com",
    )
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_production_without_a_secret_key_fails_loudly(tmp_path):
    result = run_weituan(tmp_path, "check", WEITUAN_PROFILE="production")
    assert result.returncode == 2
    assert result.stderr == "weituan: WEITUAN_SECRET_KEY is required when WEITUAN_PROFILE=production\n"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("WEITUAN_POST_MAX_LENGTH", "lots", "WEITUAN_POST_MAX_LENGTH must be an integer"),
        ("WEITUAN_DEBUG", "maybe", "WEITUAN_DEBUG must be one of"),
        ("REDIS_URL", "http://127.0.0.1:6379", "REDIS_URL must start with one of"),
        ("WEITUAN_PROFILE", "staging", "WEITUAN_PROFILE must be one of"),
    ],
)
def test_a_bad_setting_names_itself(tmp_path, name, value, message):
    result = run_weituan(tmp_path, "check", **{name: value})
    assert result.returncode == 2
    assert result.stderr.startswith(f"weituan: {message}")
    assert result.stderr.count("\n") == 1  # one line, no traceback


def test_pages_carry_a_content_security_policy(client, db):
    response = client.get("/healthz")
    assert response.status_code == 200
    policy = response["Content-Security-Policy"]
    assert "default-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy


def test_the_embedded_database_logs_ahead_and_keeps_temporary_files_in_memory(tmp_path):
    """A statement changing many rows inside a transaction journals the pages it changes, to undo
    itself alone; past 64 KiB SQLite spills that journal to a temporary file, a write per page that is
    read back only if the statement fails (a fan-out's entries of many posts). The embedded database
    keeps it in memory."""
    show = (
        "from django.db import connection\n"
        "with connection.cursor() as cursor:\n"
        "    for name in ('journal_mode', 'synchronous', 'temp_store'):\n"
        "        print(name, cursor.execute(f'PRAGMA {name}').fetchone()[0])\n"
    )
    result = run_weituan(tmp_path, "shell", "-c", show)
    assert result.returncode == 0, result.stderr
    shown = dict(
        line.split(" ", 1)
        for line in result.stdout.splitlines()
        if line.startswith(("journal", "sync", "temp"))
    )
    # synchronous 1 is NORMAL, temp_store 2 is MEMORY.
    assert shown == {"journal_mode": "wal", "synchronous": "1", "temp_store": "2"}
