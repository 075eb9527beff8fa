"""The analytics store: one interface over embedded chDB and a ClickHouse server, with the same SQL.

`analytics_store()` returns the process-wide store, opened lazily on first use. chDB files can be
opened by one process only, so the embedded store is a singleton that lives as long as the process;
outside tests it runs in a store process of its own (see `chdb_process`), so that chDB's work never
holds the serving process's interpreter lock.
"""

import threading

from django.conf import settings

from weituan.tracking.store.base import AnalyticsStore, StoreError
from weituan.tracking.store.schema import schema_migrate

__all__ = ["AnalyticsStore", "StoreError", "analytics_store", "analytics_store_close"]

_lock = threading.Lock()
_store: AnalyticsStore | None = None


def analytics_store() -> AnalyticsStore:
    """The store for this process, migrated to the newest schema on first use."""
    global _store
    store = _store
    if store is not None:
        return store
    with _lock:
        if _store is None:
            _store = _open()
            schema_migrate(_store)
        return _store


def _open() -> AnalyticsStore:
    if settings.CLICKHOUSE_URL:
        from weituan.tracking.store.http_store import HttpStore

        return HttpStore(settings.CLICKHOUSE_URL)
    if settings.CHDB_PROCESS:
        from weituan.tracking.store.chdb_process import ChdbProcessStore

        return ChdbProcessStore(settings.CHDB_PATH)
    from weituan.tracking.store.chdb_store import ChdbStore

    return ChdbStore(settings.CHDB_PATH)


def analytics_store_close() -> None:
    """Close the store (at process exit); the next call to `analytics_store()` opens it again."""
    global _store
    with _lock:
        if _store is not None:
            _store.close()
            _store = None
