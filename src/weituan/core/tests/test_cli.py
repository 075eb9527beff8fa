"""The `weituan` command: serving, the pass-through to management commands, and one-line errors."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest


def _env(tmp_path, **extra):
    ours = ("WEITUAN_", "DATABASE_URL", "REDIS_URL", "DJANGO_ALLOW_ASYNC_UNSAFE")
    env = {k: v for k, v in os.environ.items() if not k.startswith(ours)}
    env.update({"WEITUAN_DATA_DIR": str(tmp_path), "WEITUAN_PROFILE": "dev", **extra})
    return env


def _weituan(tmp_path, *args, **env):
    return subprocess.run(
        [sys.executable, "-m", "weituan.cli", *args],
        env=_env(tmp_path, **env),
        capture_output=True,
        text=True,
        timeout=120,
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_serve_demo_migrates_builds_the_town_and_answers_on_loopback(tmp_path):
    port = _free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "weituan.cli",
            "serve",
            "--demo",
            "--port",
            str(port),
            "--data-dir",
            str(tmp_path),
        ],
        env=_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        body = b""
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
                    body = response.read()
                break
            except OSError:
                if server.poll() is not None:
                    raise AssertionError(server.stderr.read() if server.stderr else "server exited") from None
                time.sleep(0.3)
        assert body == b'{"status": "ok"}'
        assert (tmp_path / "weituan.sqlite3").exists()
        # Links made outside a request point at this server's port (no WEITUAN_SITE_URL set).
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/instance", timeout=10) as response:
            assert json.loads(response.read())["uri"] == f"127.0.0.1:{port}"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as response:
            page = response.read().decode()
        # An anonymous visitor sees the town's public timeline, merchants' deals included.
        assert "南翔小笼包" in page or "陈记火锅" in page or "奶茶研究所" in page or "FitClub" in page
    finally:
        server.terminate()
        server.wait(timeout=20)


def test_management_commands_pass_through(tmp_path):
    result = _weituan(tmp_path, "showmigrations", "accounts")
    assert result.returncode == 0, result.stderr
    assert "0001_initial" in result.stdout


@pytest.mark.parametrize(
    "command",
    [["migrate"], ["tracking_flush"], ["createsuperuser", "--noinput"], ["serve"], ["demo"], ["worker"]],
    ids=" ".join,
)
def test_a_bad_environment_value_is_one_clear_line_for_every_command(tmp_path, command):
    result = _weituan(tmp_path, *command, WEITUAN_POST_MAX_LENGTH="lots")
    assert result.returncode == 2
    assert result.stderr == "weituan: WEITUAN_POST_MAX_LENGTH must be an integer, not 'lots'\n"
    assert result.stdout == ""
    assert not (tmp_path / "weituan.sqlite3").exists()  # refused before anything was written


def test_an_unknown_benchmark_is_one_clear_line(tmp_path):
    result = _weituan(tmp_path, "bench", "no_such_bench")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("weituan: no benchmark 'no_such_bench'")


def test_several_serving_processes_without_redis_are_refused_in_one_line(tmp_path):
    for extra in (["--server", "granian"], ["--workers", "2"]):
        result = _weituan(tmp_path, "serve", "--port", str(_free_port()), *extra)
        assert result.returncode == 2, result.stderr
        assert result.stderr.count("\n") == 1
        assert "needs REDIS_URL" in result.stderr
    assert not (tmp_path / "weituan.sqlite3").exists()  # refused before anything was written


def _periodic_tasks_enqueued(tmp_path, *worker_args: str) -> set[str]:
    """Run `weituan worker` on a fresh SQLite data dir for a few seconds; the periodic tasks it enqueued."""
    import sqlite3

    assert _weituan(tmp_path, "migrate").returncode == 0
    worker = subprocess.Popen(
        [sys.executable, "-m", "weituan.cli", "worker", "--data-dir", str(tmp_path), *worker_args],
        env=_env(tmp_path),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(6)
        assert worker.poll() is None, worker.stderr.read() if worker.stderr else ""
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    with sqlite3.connect(tmp_path / "weituan.sqlite3") as db:
        return {path for (path,) in db.execute("SELECT task_path FROM django_tasks_database_dbtaskresult")}


def test_a_worker_enqueues_the_periodic_sweeps_unless_told_not_to(tmp_path):
    enqueued = _periodic_tasks_enqueued(tmp_path / "scheduling")
    assert {"weituan.deals.tasks.deals_sweep_task", "weituan.tracking.tasks.outbox_move_task"} <= enqueued
    assert _periodic_tasks_enqueued(tmp_path / "quiet", "--no-schedule") == set()


@pytest.mark.redis
def test_several_serving_processes_share_the_embedded_store(tmp_path):
    """Two uvicorn processes and a management command, on one data dir: all reach the one store."""
    from django.conf import settings

    from weituan.tracking.store.chdb_process import ChdbProcessStore
    from weituan.tracking.store.schema import schema_migrate

    port = _free_port()
    env = _env(tmp_path, REDIS_URL=settings.REDIS_URL, WEITUAN_REDIS_PREFIX=f"wt-serve-{os.getpid()}:")
    server = subprocess.Popen(
        [sys.executable, "-m", "weituan.cli", "serve", "--workers", "2", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    beacons = 120
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2).close()
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "the server did not start"
                time.sleep(0.3)
        for n in range(beacons):  # a connection each: the two processes take turns at accepting them
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/collect",
                data=json.dumps({"url": f"https://shop.example/item/{n}"}).encode(),
                headers={"Content-Type": "application/json", "User-Agent": "Mozilla/5.0 Firefox/140.0"},
            )
            with urllib.request.urlopen(request, timeout=10) as response:
                assert response.status == 204
        flushed = subprocess.run(
            [sys.executable, "-m", "weituan.cli", "tracking_flush"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert flushed.returncode == 0, flushed.stderr  # a command reaches the store while they serve
        store = ChdbProcessStore(tmp_path / "chdb")
        try:
            schema_migrate(store)  # as any process does on first use, if no server has stored yet
            sql = "SELECT count() FROM events WHERE event = 'pageview' AND url LIKE 'https://shop.example/%'"
            deadline = time.monotonic() + 60
            while store.scalar(sql) < beacons and time.monotonic() < deadline:
                time.sleep(0.5)  # each process's write buffer flushes on its own timer
            assert store.scalar(sql) == beacons
        finally:
            store.close()
    finally:
        server.terminate()
        _out, err = server.communicate(timeout=30)
    assert "Traceback" not in err, err
