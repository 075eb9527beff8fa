import threading
from datetime import UTC, datetime, timedelta

from weituan.core.ids import id_at, next_id, time_of


def test_ids_increase_within_a_process():
    ids = [next_id() for _ in range(50_000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)


def test_ids_are_unique_across_threads():
    seen: list[int] = []
    lock = threading.Lock()

    def make() -> None:
        batch = [next_id() for _ in range(5_000)]
        with lock:
            seen.extend(batch)

    threads = [threading.Thread(target=make) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(seen)) == 40_000


def test_id_fits_a_signed_64_bit_column_and_tells_its_time():
    before = datetime.now(UTC) - timedelta(milliseconds=2)
    snowflake = next_id()
    assert 0 < snowflake < 2**63
    assert abs((time_of(snowflake) - before).total_seconds()) < 1
    assert id_at(before) <= snowflake
    assert id_at(before + timedelta(seconds=5)) > snowflake
