"""Shared test fixtures: the personas, API clients, a real SMTP server on loopback, Redis isolation."""

import gc
import os
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from weituan.core.testing import MovedClock, make_user

# The tests share a small machine with the server processes, browsers and databases of other tests:
# how long Hypothesis takes to draw an input, or to run one example, says nothing about the code under
# test, so neither fails a test (the properties themselves are checked all the same).
hypothesis_settings.register_profile("weituan", deadline=None, suppress_health_check=[HealthCheck.too_slow])
hypothesis_settings.load_profile("weituan")


@pytest.fixture
def shopper(db: Any) -> Any:
    """Alice shops: follows people and merchants, reposts, buys."""
    return make_user("alice", display_name="Alice 爱丽丝")


@pytest.fixture
def merchant(db: Any) -> Any:
    """A verified merchant selling deals."""
    return make_user("meituan_shop", display_name="美团小店", merchant=True)


@pytest.fixture
def outsider(db: Any) -> Any:
    """Charlie has no relation to anyone; every action on others' things must be refused."""
    return make_user("charlie", display_name="Charlie")


@pytest.fixture
def operator(db: Any) -> Any:
    """Olivia runs the platform: verifies merchants, reads dashboards, moderates."""
    return make_user("olivia", display_name="Olivia", operator=True)


def _bearer_client(user: Any) -> Client:
    from weituan.accounts.tokens import access_token_issue

    raw, _ = access_token_issue(user=user)
    return Client(HTTP_AUTHORIZATION=f"Bearer {raw}")


@pytest.fixture
def api_as() -> Any:
    """api_as(user) -> a test client whose requests carry a fresh OAuth bearer token of `user`."""
    return _bearer_client


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> MovedClock:
    """`clock.forward(seconds)` runs Django's clock (`timezone.now`) that much ahead for the rest of the
    test, in this process and its live server: time passes without sleeping."""
    return MovedClock.install(monkeypatch)


@pytest.fixture
def run_on_commit(django_capture_on_commit_callbacks: Any) -> Any:
    """Use as `with run_on_commit(): ...` to run on-commit work (task enqueues) when the block ends."""

    def runner() -> Any:
        return django_capture_on_commit_callbacks(execute=True)

    return runner


@pytest.fixture(autouse=True)
def _isolated_redis_prefix(settings: Any) -> Iterator[None]:
    """Each test gets its own Redis key prefix, and its keys are removed afterwards."""
    prefix = f"wt-test-{uuid.uuid4().hex[:12]}:"
    settings.REDIS_KEY_PREFIX = prefix
    yield
    if settings.REDIS_URL:
        from weituan.core.redis import get_redis

        client = get_redis()
        keys = list(client.scan_iter(match=prefix + "*", count=1000))
        if keys:
            client.delete(*keys)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class OwnRedis:
    """A redis-server of a test's own on a free loopback port, without persistence, so the test can
    stop, restart or flush it (as a Redis restart in production loses everything), or cut the way to it
    while it keeps its data (`unreachable`)."""

    def __init__(self, settings: Any) -> None:
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None
        self.settings = settings

    def start(self) -> None:
        server = shutil.which("redis-server") or "redis-server"
        self.process = subprocess.Popen(  # noqa: S603 - a fixed program and arguments
            [server, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def restart(self) -> None:
        """Down and up again, empty: what a Redis without persistence comes back as."""
        self.stop()
        self.start()

    @contextmanager
    def unreachable(self) -> Iterator[None]:
        """While inside: the product's Redis cannot be reached (a port nothing listens on, as behind a
        network cut), and the server keeps its data for when the way to it is back."""
        self.settings.REDIS_URL = f"redis://127.0.0.1:{_free_port()}/0"
        try:
            yield
        finally:
            self.settings.REDIS_URL = self.url


@pytest.fixture
def own_redis(settings: Any) -> Iterator[OwnRedis]:
    """The product pointed at a Redis of this test's own (timelines, stock gate, rate limits, cache)."""
    redis = OwnRedis(settings)
    redis.start()
    settings.REDIS_URL = redis.url
    settings.CACHES = {"default": {"BACKEND": "weituan.core.cache.RedisCacheOrMiss", "LOCATION": redis.url}}
    try:
        yield redis
    finally:
        redis.stop()
        settings.REDIS_URL = ""  # the prefix fixture's clean-up has nothing to reach


@pytest.fixture(autouse=True)
def _live_clients_let_go(request: Any) -> Iterator[None]:
    """After a test against the live server: the clients it made are collected now (a caught error's
    traceback keeps a client in a cycle), so their kept-alive connections close and the server's
    threads for them end while the server and its shared connection are still up, instead of at the
    end of the session, where such a thread fails closing a connection no longer shared with it."""
    yield
    if "live_server" in request.fixturenames:
        gc.collect()


@pytest.fixture(autouse=True)
def _deal_previews_forgotten() -> None:
    """Deal previews are kept per process by deal id, which never changes hands in a database; between
    tests the database is emptied and ids are given out again."""
    from weituan.deals.facade import deal_previews_clear

    deal_previews_clear()


@dataclass
class SmtpInbox:
    host: str
    port: int
    messages: list[Message] = field(default_factory=list)
    arrived: threading.Event = field(default_factory=threading.Event)
    # Addresses the server refuses at RCPT (550), as a mail server refuses an unknown mailbox.
    refused: set[str] = field(default_factory=set)

    def wait(self, count: int = 1, timeout: float = 5.0) -> list[Message]:
        """Block until `count` messages have arrived (or fail the test)."""
        waited = 0.0
        while len(self.messages) < count and waited < timeout:
            self.arrived.wait(0.05)
            self.arrived.clear()
            waited += 0.05
        assert len(self.messages) >= count, f"expected {count} e-mails, got {len(self.messages)}"
        return self.messages


@pytest.fixture
def smtp_inbox(settings: Any) -> Iterator[SmtpInbox]:
    """A real SMTP server (aiosmtpd) on 127.0.0.1; Django's SMTP backend delivers to it."""
    from aiosmtpd.controller import Controller

    inbox: SmtpInbox

    class Handler:
        async def handle_RCPT(
            self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
        ) -> str:
            if address in inbox.refused:
                return "550 5.1.1 No such mailbox"
            envelope.rcpt_tos.append(address)
            return "250 OK"

        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            inbox.messages.append(message_from_bytes(envelope.original_content or envelope.content))
            inbox.arrived.set()
            return "250 Message accepted for delivery"

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    inbox = SmtpInbox(host="127.0.0.1", port=port)
    settings.MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {"host": "127.0.0.1", "port": port, "use_tls": False, "timeout": 5},
        }
    }
    try:
        yield inbox
    finally:
        controller.stop()


def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    """Tests marked `postgres` need PostgreSQL and tests marked `redis` need Redis: without them they are
    deselected (and counted as such), not skipped silently; CI's second run has both."""
    missing = set()
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        missing.add("postgres")
    if not settings.REDIS_URL:
        missing.add("redis")
    kept, deselected = [], []
    for item in items:
        needs = any(item.get_closest_marker(name) for name in missing)
        (deselected if needs else kept).append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = kept


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium driven by Playwright (its own browser download is not used).

    One per test module: Playwright's event loop runs on the main thread while it is open, and
    later modules that start their own loop (asyncio.run) must not find it still running.
    """
    # Playwright's sync API runs an event loop on this thread; the ORM calls the tests make
    # between page actions are still synchronous and safe.
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def phone_page(browser: Any) -> Iterator[Any]:
    """A fresh browser context the size of a phone, in Chinese."""
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN")
    context.set_default_timeout(15_000)
    page = context.new_page()
    try:
        yield page
    finally:
        context.close()


@pytest.fixture(scope="session", autouse=True)
def _database_pool_closed_at_the_end(request: Any) -> Iterator[None]:
    """PostgreSQL's connection pool keeps its connections open after the last test; they are closed
    before the test database is dropped (which refuses while a session is connected)."""
    if "django_db_setup" in request.fixturenames or settings.DATABASES["default"]["OPTIONS"].get("pool"):
        request.getfixturevalue("django_db_setup")
    yield
    from django.db import connections

    from weituan.tracking.buffer import write_buffer

    # Events the tests left in the write buffer (impressions, views) are stored now, while the run's
    # logging still has its streams, rather than by the buffer's exit hook after they are closed.
    with request.getfixturevalue("django_db_blocker").unblock():
        write_buffer().flush()
    for wrapper in connections.all(initialized_only=True):
        if getattr(wrapper, "pool", None) is not None:
            wrapper.close_pool()
    connection = connections["default"]
    if connection.vendor == "postgresql":
        # Threads that live as long as the process (the fast paths' request threads, the write
        # buffer's flusher) keep a connection each, out of this thread's reach; they are ended here.
        with request.getfixturevalue("django_db_blocker").unblock(), connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        connection.close()
