"""The `weituan` command: serving, the pass-through to management commands, and one-line errors."""

import json
import os
import re
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import closing
from typing import Any

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


def _api(port: int, path: str, *, data: dict | None = None, token: str = "") -> Any:
    headers = {"Content-Type": "application/json"} if data is not None else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    body = json.dumps(data).encode() if data is not None else None
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def _log_in(port: int, username: str) -> str:
    """An access token of a demo user, by the OAuth password grant of a freshly registered app."""
    from weituan.simulate.demo import DEMO_PASSWORD

    app = _api(
        port,
        "/api/v1/apps",
        data={
            "client_name": "cli test",
            "redirect_uris": "urn:ietf:wg:oauth:2.0:oob",
            "scopes": "read write",
        },
    )
    grant = {"grant_type": "password", "username": username, "password": DEMO_PASSWORD, "scope": "read write"}
    grant |= {"client_id": app["client_id"], "client_secret": app["client_secret"]}
    return _api(port, "/oauth/token", data=grant)["access_token"]


def _until_healthy(server: subprocess.Popen, port: int, seconds: float = 120) -> None:
    """Wait, at most `seconds`, for the server on `port` to answer /healthz."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2).close()
            return
        except OSError:
            assert server.poll() is None, server.stderr.read() if server.stderr else "the server exited"
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.3)


def _rows(data_dir, sql: str, *params) -> list[tuple]:
    with closing(sqlite3.connect(data_dir / "weituan.sqlite3", timeout=30)) as db:
        return db.execute(sql, params).fetchall()


def _fanout_task(data_dir, post_id: int) -> tuple[str, list[str]] | None:
    """The status of a post's fan-out task and the workers that ran it; None before it is queued."""
    rows = _rows(
        data_dir,
        "SELECT status, worker_ids FROM django_tasks_database_dbtaskresult"
        " WHERE task_path = 'weituan.microblog.timelines.tasks.fanout_deliver_task'"
        " AND json_extract(args_kwargs, '$.kwargs.post_id') = ?",
        post_id,
    )
    return (rows[0][0], json.loads(rows[0][1])) if rows else None


def _until_finished(
    data_dir, post_id: int, process: subprocess.Popen, seconds: float
) -> tuple[str, list[str]]:
    """Wait, at most `seconds`, for the post's fan-out task to end (SUCCESSFUL or FAILED)."""
    deadline = time.monotonic() + seconds
    while True:
        task = _fanout_task(data_dir, post_id)
        if task and task[0] in ("SUCCESSFUL", "FAILED"):
            return task
        assert process.poll() is None, process.stderr.read() if process.stderr else "the process exited"
        assert time.monotonic() < deadline, f"the fan-out task of post {post_id} is still {task}"
        time.sleep(0.2)


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

        # A merchant posts through the API; the server's own worker delivers it to a follower's home.
        merchant = _api(port, "/api/v1/accounts/lookup?acct=xiaolongbao")
        fan = _api(port, f"/api/v1/accounts/{merchant['id']}/followers?limit=1")[0]
        fan_token = _log_in(port, fan["acct"])
        _api(port, "/api/v1/timelines/home", token=fan_token)  # read: built now, kept current by fan-out
        status = _api(
            port,
            "/api/v1/statuses",
            data={"status": "今天小笼包第二笼半价"},
            token=_log_in(port, "xiaolongbao"),
        )
        state, workers = _until_finished(tmp_path, int(status["id"]), server, seconds=120)
        assert state == "SUCCESSFUL"
        assert any(f"-{server.pid}-" in worker for worker in workers)  # this process's worker thread
        home = _api(port, "/api/v1/timelines/home?limit=5", token=fan_token)
        assert home[0]["id"] == status["id"]
        assert home[0]["content"] == status["content"]
    finally:
        server.terminate()
        server.wait(timeout=20)


def test_a_worker_process_runs_the_tasks_queued_for_it(tmp_path):
    assert _weituan(tmp_path, "migrate").returncode == 0
    # Queued with no worker running: a follow (its author's posts go into the follower's home) and,
    # after the follower has read their home, a post to deliver there.
    script = (
        "from weituan.core.testing import make_user\n"
        "from weituan.microblog.services.posts import post_create\n"
        "from weituan.microblog.services.relations import follow_create\n"
        "from weituan.microblog.timelines.home import home_timeline_ids\n"
        "shop, fan = make_user('shop'), make_user('fan')\n"
        "follow_create(follower=fan, followee_id=shop.id)\n"
        "home_timeline_ids(fan.pk, limit=20)\n"
        "print(fan.pk, post_create(author=shop, text='新品上架').id)\n"
    )
    queued = _weituan(tmp_path, "shell", "--no-imports", "-c", script)
    assert queued.returncode == 0, queued.stderr
    fan_id, post_id = map(int, queued.stdout.split())
    assert _fanout_task(tmp_path, post_id) == ("READY", [])
    assert _rows(
        tmp_path, "SELECT count(*) FROM microblog_timelines_timelineentry WHERE post_id = ?", post_id
    ) == [(0,)]

    worker = subprocess.Popen(
        [sys.executable, "-m", "weituan.cli", "worker", "--no-schedule", "--interval", "0.1"],
        env=_env(tmp_path),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        state, workers = _until_finished(tmp_path, post_id, worker, seconds=120)
    finally:
        worker.terminate()
        _out, err = worker.communicate(timeout=30)
    assert state == "SUCCESSFUL"
    assert len(workers) == 1 and f"-{worker.pid}-" in workers[0]
    assert _rows(
        tmp_path, "SELECT user_id FROM microblog_timelines_timelineentry WHERE post_id = ?", post_id
    ) == [(fan_id,)]
    assert "Traceback" not in err, err


def test_demo_builds_the_town_once(tmp_path):
    town = tmp_path / "town"
    built = _weituan(tmp_path, "demo", "--data-dir", str(town))
    assert built.returncode == 0, built.stderr
    assert built.stdout.startswith("Demo world: 29 users, ")
    assert "password 'weituan-demo'" in built.stdout
    assert not (tmp_path / "weituan.sqlite3").exists()  # --data-dir wins over WEITUAN_DATA_DIR
    people = dict(_rows(town, "SELECT username, is_merchant FROM accounts_user"))
    assert len(people) == 29
    assert {name for name, merchant in people.items() if merchant} == {
        "xiaolongbao",
        "hotpot_chen",
        "milk_tea_lab",
        "fitclub",
    }
    assert {"alice", "bob", "olivia"} <= people.keys()
    posts = _rows(town, "SELECT count(*) FROM microblog_post")

    again = _weituan(tmp_path, "demo", "--data-dir", str(town))
    assert again.returncode == 2
    assert again.stderr == (
        "weituan: the database already has users: the demo world is built only on an empty one\n"
    )
    assert _rows(town, "SELECT count(*) FROM accounts_user") == [(29,)]
    assert _rows(town, "SELECT count(*) FROM microblog_post") == posts


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


def _one_line(result: subprocess.CompletedProcess) -> str:
    """The one line a refused command printed (and nothing else), without its newline."""
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr
    return result.stderr.rstrip("\n")


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["serve", "--bogus"], "weituan: unrecognized arguments: --bogus (see weituan --help)"),
        (
            ["serve", "--port", "abc"],
            "weituan serve: argument --port: not a port number: 'abc' (see weituan serve --help)",
        ),
        (
            ["serve", "--port", "70000"],
            "weituan serve: argument --port: a port is 1–65535, not 70000 (see weituan serve --help)",
        ),
        (["serve", "--server", "gunicorn"], None),
        (["no_such_command"], "weituan: no command 'no_such_command' (weituan --help, weituan help)"),
    ],
    ids=["unknown option", "port not a number", "port out of range", "bad choice", "unknown command"],
)
def test_a_bad_option_or_command_is_one_clear_line(tmp_path, args, line):
    printed = _one_line(_weituan(tmp_path, *args))
    if line is not None:
        assert printed == line
    else:
        assert printed.startswith("weituan serve: argument --server: invalid choice: 'gunicorn'")
    assert not (tmp_path / "weituan.sqlite3").exists()


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ["ledger"],
            "weituan ledger: the following arguments are required: action (see weituan ledger --help)",
        ),
        (["deals", "sweeep"], "weituan deals: argument action: invalid choice: 'sweeep' (choose from "),
        (
            ["tracking_flush", "--bogus"],
            "weituan tracking_flush: unrecognized arguments: --bogus (see weituan tracking_flush --help)",
        ),
    ],
    ids=["missing action", "unknown action", "unknown option"],
)
def test_bad_input_to_our_management_commands_is_one_clear_line(tmp_path, args, line):
    printed = _one_line(_weituan(tmp_path, *args))
    if line.endswith("--help)"):
        assert printed == line
    else:  # how argparse quotes the choices depends on the Python version
        assert printed.startswith(line)
        assert re.fullmatch(r".*'?sweep'?\) \(see weituan deals --help\)", printed)


def test_help_names_the_subcommands_and_the_management_commands(tmp_path):
    for module in ("weituan", "weituan.cli"):  # `python -m weituan` is the command too
        result = subprocess.run(
            [sys.executable, "-m", module, "--help"],
            env=_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        assert "{serve,demo,worker,bench}" in result.stdout
        assert "`weituan help` lists them" in " ".join(result.stdout.split())


def test_serving_on_a_busy_port_is_refused_in_one_line_before_anything_starts(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        printed = _one_line(_weituan(tmp_path, "serve", "--port", str(port)))
    assert printed == (
        f"weituan: cannot listen on 127.0.0.1:{port}: Address already in use "
        "(another server uses it; choose another --port)"
    )
    # Refused before migrating: and it never claimed to be serving.
    assert not (tmp_path / "weituan.sqlite3").exists()


def test_serving_on_a_host_that_does_not_resolve_is_one_line(tmp_path):
    printed = _one_line(_weituan(tmp_path, "serve", "--host", "no-such-host.invalid", "--port", "8000"))
    assert printed.startswith("weituan: cannot listen on no-such-host.invalid:8000: ")
    assert printed.endswith(" (check --host)")


@pytest.mark.parametrize(
    "command", [["serve", "--port", "0"], ["worker"], ["demo"], ["migrate"]], ids=" ".join
)
def test_an_unreachable_database_is_one_line_at_once(tmp_path, command):
    if command[0] == "serve":
        command = ["serve", "--port", str(_free_port())]
    # Port 1 on loopback: nothing listens, the connection is refused at once.
    started = time.monotonic()
    printed = _one_line(_weituan(tmp_path, *command, DATABASE_URL="postgres://weituan@127.0.0.1:1/weituan"))
    assert printed.startswith("weituan: cannot use the database (DATABASE_URL): connection failed: ")
    assert "Connection refused" in printed
    # Not after the connection pool's timeout (30 s).
    assert time.monotonic() - started < 25


@pytest.mark.parametrize("command", [["serve"], ["worker"]], ids=" ".join)
def test_an_unreachable_redis_is_one_line_before_serving(tmp_path, command):
    if command[0] == "serve":
        command = ["serve", "--port", str(_free_port())]
    printed = _one_line(_weituan(tmp_path, *command, REDIS_URL="redis://127.0.0.1:1/0"))
    assert (
        printed
        == "weituan: cannot reach Redis (REDIS_URL): Error 111 connecting to 127.0.0.1:1. Connection refused."
    )


def test_a_data_directory_that_cannot_be_made_is_one_line(tmp_path):
    (tmp_path / "a-file").write_text("not a directory")
    inside_a_file = tmp_path / "a-file" / "data"
    for command in (["serve", "--port", str(_free_port())], ["migrate"]):
        printed = _one_line(_weituan(tmp_path, *command, WEITUAN_DATA_DIR=str(inside_a_file)))
        assert printed == f"weituan: WEITUAN_DATA_DIR: cannot create {inside_a_file}: Not a directory"


def test_several_serving_processes_without_redis_are_refused_in_one_line(tmp_path):
    for extra in (["--workers", "2"], ["--server", "granian", "--workers", "2"]):
        result = _weituan(tmp_path, "serve", "--port", str(_free_port()), *extra)
        assert result.returncode == 2, result.stderr
        assert result.stderr.count("\n") == 1
        assert "needs REDIS_URL" in result.stderr
    assert not (tmp_path / "weituan.sqlite3").exists()  # refused before anything was written


def test_one_granian_process_serves_sqlite_without_redis(tmp_path):
    """The WSGI server in one process is one serving process: no Redis needed. The task worker runs on
    a thread of the process `serve` started, and delivers what the granian process accepted."""
    from weituan.simulate.demo import DEMO_PASSWORD

    assert _weituan(tmp_path, "migrate").returncode == 0
    script = (
        "from weituan.core.testing import make_user\n"
        "from weituan.microblog.services.relations import follow_create\n"
        f"shop, fan = make_user('shop', password={DEMO_PASSWORD!r}), make_user('fan', password={DEMO_PASSWORD!r})\n"
        "follow_create(follower=fan, followee_id=shop.id)\n"
    )
    made = _weituan(tmp_path, "shell", "--no-imports", "-c", script)
    assert made.returncode == 0, made.stderr
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "weituan.cli", "serve", "--server", "granian", "--port", str(port)],
        env=_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _until_healthy(server, port)
        fan_token = _log_in(port, "fan")
        assert _api(port, "/api/v1/timelines/home", token=fan_token) == []
        status = _api(
            port, "/api/v1/statuses", data={"status": "蟹粉小笼今日限量"}, token=_log_in(port, "shop")
        )
        state, workers = _until_finished(tmp_path, int(status["id"]), server, seconds=120)
        assert state == "SUCCESSFUL"
        assert any(f"-{server.pid}-" in worker for worker in workers)  # the worker thread of `serve`
        assert [post["id"] for post in _api(port, "/api/v1/timelines/home", token=fan_token)] == [
            status["id"]
        ]
        with pytest.raises(urllib.error.HTTPError) as streaming:  # a stream would hold a serving thread
            _api(port, "/api/v1/streaming/user", token=fan_token)
        assert streaming.value.code == 501
        assert json.loads(streaming.value.read())["code"] == "streaming_unavailable"
    finally:
        server.terminate()
        server.wait(timeout=20)


def _periodic_tasks_enqueued(tmp_path, *worker_args: str) -> set[str]:
    """Run `weituan worker` on a fresh SQLite data dir for a few seconds; the periodic tasks it enqueued."""
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
        _until_healthy(server, port)
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


@pytest.mark.parametrize("asked", ["--version", "version"])
def test_the_version_needs_no_database(tmp_path, asked):
    import django

    ran = _weituan(tmp_path, asked, DATABASE_URL="postgres://weituan@127.0.0.1:1/weituan")
    assert (ran.returncode, ran.stdout.strip(), ran.stderr) == (0, django.get_version(), "")


def test_granian_threads_follow_the_database_unless_told(settings):
    from weituan.cli import serving_threads

    settings.IS_POSTGRES = True
    assert serving_threads() == 4  # statements wait on the network: more threads overlap them
    settings.IS_POSTGRES = False
    assert serving_threads() == 1  # SQLite's run in the process
