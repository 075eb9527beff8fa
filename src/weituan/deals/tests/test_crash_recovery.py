"""A worker killed with SIGKILL in the middle of tipping or voiding is finished by the next run."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

WORKER = Path(__file__).with_name("crash_worker.py")
WEITUAN = Path(sys.executable).with_name("weituan")


def _env(**extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "REDIS_URL")}
    env.update({"WEITUAN_PROFILE": "dev", "WEITUAN_LOG_LEVEL": "ERROR"}, **extra)
    return env


def _crash_and_recover(env: dict[str, str], phase: str) -> dict:
    crashed = subprocess.run(
        [sys.executable, str(WORKER), "crash", phase], env=env, capture_output=True, text=True, timeout=120
    )
    assert crashed.returncode == -9, crashed.stdout + crashed.stderr
    recovered = subprocess.run(
        [sys.executable, str(WORKER), "recover", phase], env=env, capture_output=True, text=True, timeout=120
    )
    assert recovered.returncode == 0, recovered.stderr
    outcome = json.loads(recovered.stdout.strip().splitlines()[-1])
    check = subprocess.run(
        [str(WEITUAN), "ledger", "check"], env=env, capture_output=True, text=True, timeout=60
    )
    outcome["check"] = (check.returncode, check.stdout.strip())
    return outcome


def _postgres_url() -> str:
    """The test database's URL, for the worker processes."""
    db = settings.DATABASES["default"]
    return (
        f"postgres://{db['USER']}:{db.get('PASSWORD') or ''}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"
    )


def _assert_announced(outcome: dict) -> None:
    # Killed after the publication committed and before its post: live, unannounced; the next sweep
    # announces it once, by its merchant, and the one after has nothing left to do.
    assert outcome["before"] == ["live", None]
    assert outcome["announced"] == [1, 0]
    assert len(outcome["posts"]) == 1 and outcome["after"] == ["live", outcome["posts"][0]]
    assert outcome["author"]
    assert outcome["check"][0] == 0 and outcome["check"][1].startswith("ledger ok")


def test_kill_minus_nine_after_a_publication_commits_on_sqlite(tmp_path):
    _assert_announced(_crash_and_recover(_env(WEITUAN_DATA_DIR=str(tmp_path), CRASH_MIGRATE="1"), "publish"))


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_kill_minus_nine_after_a_publication_commits_on_postgres():
    _assert_announced(_crash_and_recover(_env(DATABASE_URL=_postgres_url()), "publish"))


def test_kill_minus_nine_mid_settlement_on_sqlite(tmp_path):
    # One data directory (one migrate) for both phases; each phase has its own deal.
    env = _env(WEITUAN_DATA_DIR=str(tmp_path), CRASH_MIGRATE="1")
    _assert_finished(_crash_and_recover(env, "tip"), "tip")
    env["CRASH_MIGRATE"] = "0"
    _assert_finished(_crash_and_recover(env, "void"), "void")


def _assert_finished(outcome: dict, phase: str) -> None:
    if phase == "tip":
        # Two captures committed before the kill; the third was rolled back with its transaction.
        assert outcome["before"] == ["captured"] * 2 + ["authorized"] * 4
        assert outcome["after"] == ["captured"] * 6
        assert outcome["captures"] == 6
        assert outcome["deal_state"] == "tipped"
    else:
        assert outcome["before"] == ["voided"] * 2 + ["authorized"] * 4
        assert outcome["after"] == ["voided"] * 6
        assert outcome["voids"] == 6
        assert outcome["deal_state"] == "failed"
    assert outcome["ledger_ok"], outcome["problems"]
    assert outcome["check"][0] == 0
    assert outcome["check"][1].startswith("ledger ok")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("phase", ["tip", "void"])
def test_kill_minus_nine_mid_settlement_on_postgres(phase):
    _assert_finished(_crash_and_recover(_env(DATABASE_URL=_postgres_url()), phase), phase)
