"""The embedded analytics store: chDB (the ClickHouse engine in process) with files under the data dir."""

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from weituan.tracking.store.base import SESSION_SETTINGS, AnalyticsStore, StoreError, param_text

DATABASE = "weituan"


class ChdbStore(AnalyticsStore):
    """One chDB connection per process; statements are serialised because the connection has one cursor."""

    kind = "chdb"

    def __init__(self, path: Path | str):
        import chdb

        Path(path).mkdir(parents=True, exist_ok=True)
        self.path = str(path)
        self._lock = threading.Lock()
        try:
            self._conn: Any = chdb.connect(self.path)
            for name, value in SESSION_SETTINGS.items():
                self._conn.query(f"SET {name} = '{value}'")
            self._conn.query(f"CREATE DATABASE IF NOT EXISTS {DATABASE}")
            self._conn.query(f"USE {DATABASE}")
        except Exception as exc:
            raise StoreError(f"cannot open the analytics store at {self.path}: {exc}") from exc

    def _run(self, sql: str, fmt: str, params: dict[str, Any] | None) -> Any:
        if self._conn is None:
            raise StoreError("the analytics store is closed")
        with self._lock:
            try:
                text = {name: param_text(value) for name, value in params.items()} if params else None
                return self._conn.query(sql, fmt, params=text)
            except Exception as exc:
                raise StoreError(str(exc)) from exc

    def execute(self, sql: str, params: dict[str, Any] | None = None) -> None:
        self._run(sql, "CSV", params)

    def _select_json(self, sql: str, params: dict[str, Any] | None) -> bytes:
        result = self._run(sql, "JSONCompact", params)
        return bytes(result.bytes())

    def _insert_tsv(self, table: str, columns: Sequence[str], payload: bytes) -> None:
        self._insert_tsv_texts(table, columns, (payload,))

    def _insert_tsv_texts(self, table: str, columns: Sequence[str], texts: Sequence[bytes]) -> None:
        # One streamed insert: the texts are parsed one after another into one part, never joined.
        if self._conn is None:
            raise StoreError("the analytics store is closed")
        statement = f"INSERT INTO {table} ({', '.join(columns)})"
        with self._lock:
            try:
                with self._conn.send_insert(statement, "TabSeparated") as inserter:
                    for text in texts:
                        inserter.append(text)
                    inserter.finish()
            except Exception as exc:
                raise StoreError(str(exc)) from exc

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
