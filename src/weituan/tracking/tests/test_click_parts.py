"""The pieces a click is made of, kept or drawn ahead for the redirect: visitor ids, the per-user-agent
part of the click line, and the one-counted-click-per-hour memory."""

import os
import threading
import time

import pytest

from weituan.tracking.clients import bot_reason, device_class
from weituan.tracking.services.events import click_agent_fields_raw, click_agents_raw
from weituan.tracking.services.ingest import CLICK_DEDUP_SECONDS, ClickSeen, click_seen_key
from weituan.tracking.store.base import tsv_text
from weituan.tracking.visitors import visitor_id_new, visitor_id_valid


def test_new_visitor_ids_are_valid_distinct_and_span_refills() -> None:
    ids = [visitor_id_new() for _ in range(1000)]  # several blocks read from the random source
    assert len(set(ids)) == 1000
    assert all(len(value) == 32 and int(value, 16) >= 0 and visitor_id_valid(value) for value in ids)


def test_visitor_ids_taken_from_many_threads_are_never_handed_out_twice() -> None:
    taken: list[list[str]] = [[] for _ in range(8)]

    def take(into: list[str]) -> None:
        into.extend(visitor_id_new() for _ in range(2000))

    threads = [threading.Thread(target=take, args=(into,)) for into in taken]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [value for into in taken for value in into]
    assert len(every) == 16_000 and len(set(every)) == 16_000


# The child only takes one id and writes it to a pipe: no lock another thread could hold.
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_forked_child_does_not_hand_out_its_parent_ids() -> None:
    visitor_id_new()  # the parent holds a block of ids drawn ahead
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.write(write, visitor_id_new().encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    with os.fdopen(read) as pipe:
        child_id = pipe.read()
    parent_next = [visitor_id_new() for _ in range(200)]  # past the end of the block held at the fork
    assert len(child_id) == 32 and child_id not in parent_next


USER_AGENTS = [
    b"Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
    b"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/130.0 Safari/537.36",
    b"Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X)",
    b"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    b"curl/8.5.0",
    b"",
    b"   ",
    b"Mozilla/5.0 (Linux; Android 14)\tTab\\Slash",
    b"Mozilla/5.0 (X11; Linux) caf\xe9 \xff",  # ISO-8859-1 bytes, as a header may carry
    b"x" * 600,  # longer than the stored 512 characters
]


@pytest.mark.parametrize("user_agent", USER_AGENTS)
def test_the_per_user_agent_part_by_header_bytes_is_the_uncached_classification(user_agent: bytes) -> None:
    click_agents_raw.clear()
    text = user_agent.decode("latin1")
    expected = (
        bot_reason(method="GET", user_agent=text, headers={}),
        f"{device_class(text)}\t{tsv_text(text[:512])}".encode(),
    )
    assert click_agent_fields_raw(user_agent) == expected
    assert click_agents_raw[user_agent] == expected  # kept: the next click reads it directly
    assert click_agent_fields_raw(user_agent) is click_agents_raw[user_agent]


def test_one_counted_click_per_link_visitor_and_hour() -> None:
    seen = ClickSeen()
    assert seen.first(1, "visitor01", 1000.0) is True
    assert seen.first(1, "visitor01", 1000.5) is False  # a repeat within the hour
    assert seen.first(2, "visitor01", 1000.5) is True  # another link
    assert seen.first(1, "visitor02", 1000.5) is True  # another visitor
    assert seen.first(1, "visitor01", 1000.0 + CLICK_DEDUP_SECONDS) is True  # the hour is over
    assert seen.first(1, "visitor01", 1000.0 + CLICK_DEDUP_SECONDS + 10) is False  # a new hour began
    assert seen.until[b"1\tvisitor01"] == 1000.0 + 2 * CLICK_DEDUP_SECONDS


def test_a_batch_gives_the_answers_of_one_click_at_a_time() -> None:
    clicks = [((1, "a1234567"), 10.0), ((1, "a1234567"), 20.0), ((2, "a1234567"), 30.0),
              ((1, "a1234567"), 10.0 + CLICK_DEDUP_SECONDS), ((1, "a1234567"), 40.0 + CLICK_DEDUP_SECONDS)]  # fmt: skip
    one_by_one = ClickSeen()
    expected = [one_by_one.first(link, visitor, at) for (link, visitor), at in clicks]
    by_key = [(click_seen_key(link, visitor), at) for (link, visitor), at in clicks]
    assert ClickSeen().firsts(by_key) == expected == [True, False, True, True, False]


def test_a_pairs_key_is_the_click_lines_first_two_fields() -> None:
    assert click_seen_key(12, "a1234567") == b"12\ta1234567"
    assert click_seen_key(3, "caf\u00e9") == "3\tcaf\u00e9".encode()  # as a line holds the text
    assert click_seen_key(3, "x\udc80") == b"3\tx\xed\xb2\x80"  # any text has a key (no error)
    seen = ClickSeen()
    assert seen.first(12, "a1234567", 10.0) is True
    assert seen.first_key(b"12\ta1234567", 20.0) is False  # one memory, whichever way it is asked
    assert seen.first_key(b"12\ta1234568", 20.0) is True


def test_racing_first_clicks_count_once_and_pruning_meanwhile_is_safe() -> None:
    seen = ClickSeen()
    for old in range(2000):
        seen.until[click_seen_key(9, f"gone{old:05d}")] = 0.0  # hours long over
    counted: list[int] = []
    failures: list[BaseException] = []
    start = threading.Barrier(9)
    done = threading.Event()
    now = time.time()  # pruning forgets the hours over by the clock

    def click(thread: int) -> None:
        start.wait()
        firsts = 0
        for visitor in range(3000):
            firsts += seen.first(7, f"visitor{visitor:05d}", now)
            seen.first(8, f"t{thread}v{visitor:05d}", now)
        counted.append(firsts)

    def prune() -> None:  # while keys are added without the lock
        start.wait()
        try:
            # At least once, and then until the clicks are done: on a busy machine this thread may
            # first run only after the clicking threads have finished.
            while True:
                seen.prune_above = 0
                seen.prune()
                if done.is_set():
                    break
        except BaseException as exc:
            failures.append(exc)

    pruner = threading.Thread(target=prune)
    pruner.start()
    threads = [threading.Thread(target=click, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    done.set()
    pruner.join()
    assert failures == []
    assert sum(counted) == 3000  # each (link 7, visitor) counted by exactly one thread
    assert not any(key.startswith(b"9\t") for key in seen.until)
    assert len(seen.until) == 3000 + 8 * 3000


def test_racing_clicks_after_the_hour_renew_it_once() -> None:
    seen = ClickSeen()
    for visitor in range(3000):
        seen.until[click_seen_key(5, f"visitor{visitor:05d}")] = 50.0  # an hour that ended at 50
    counted: list[int] = []
    start = threading.Barrier(8)

    def click() -> None:
        start.wait()
        counted.append(sum(seen.first(5, f"visitor{visitor:05d}", 60.0) for visitor in range(3000)))

    threads = [threading.Thread(target=click) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(counted) == 3000
    assert set(seen.until.values()) == {60.0 + CLICK_DEDUP_SECONDS}
