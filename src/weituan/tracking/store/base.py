"""What every analytics store offers: insert rows, run ClickHouse SQL and get rows back."""

import json
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

# Settings every connection runs with, so results look the same on chDB and on a server.
SESSION_SETTINGS = {
    "output_format_json_quote_64bit_integers": "0",
    "output_format_json_quote_decimals": "0",
    "date_time_output_format": "iso",
    "session_timezone": "UTC",
    # Batches never repeat an event_id (ingestion dedups them first), so the replacing sort on insert
    # would find nothing to collapse; skipping it makes every insert cheaper. Merges still collapse.
    "optimize_on_insert": "0",
}


class StoreError(RuntimeError):
    """The analytics store refused or failed a statement."""


class AnalyticsStore(ABC):
    """A ClickHouse engine reached in process (chDB) or over HTTP. Thread-safe."""

    kind = "abstract"

    @abstractmethod
    def execute(self, sql: str, params: dict[str, Any] | None = None) -> None:
        """Run a statement that returns nothing (DDL, INSERT ... SELECT, TRUNCATE)."""

    @abstractmethod
    def _select_json(self, sql: str, params: dict[str, Any] | None) -> bytes:
        """Run `sql` and return its result in the JSONCompact format."""

    @abstractmethod
    def _insert_tsv(self, table: str, columns: Sequence[str], payload: bytes) -> None:
        """Append TabSeparated rows to `table`."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the engine; the default store has nothing to release."""

    def query(self, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Rows of a SELECT as dicts. Placeholders are ClickHouse's `{name:Type}`."""
        raw = self._select_json(sql, params)
        if not raw.strip():
            return []
        doc = json.loads(raw)
        names = [column["name"] for column in doc["meta"]]
        return [dict(zip(names, row, strict=True)) for row in doc["data"]]

    def scalar(self, sql: str, params: dict[str, Any] | None = None) -> Any:
        rows = self.query(sql, params)
        return next(iter(rows[0].values())) if rows else None

    def insert(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
        """Append rows (tuples in `columns` order) to `table`; returns how many were written."""
        return self.insert_columns(table, columns, list(zip(*rows, strict=True)))

    def insert_tsv(self, table: str, columns: Sequence[str], payload: bytes) -> None:
        """Append rows already written as TabSeparated text (one row per line, `columns` in order)."""
        if payload:
            self._insert_tsv(table, columns, payload)

    def insert_tsv_files(
        self, table: str, columns: Sequence[str], files: Sequence[tuple[str, int]]
    ) -> list[int] | None:
        """Append the rows of TabSeparated files in one insert; returns each file's row count.

        Each file is (path, length): its first `length` bytes are whole rows, one field per column.
        When a file is not that (a row with another number of fields, text after the last newline,
        fewer bytes than said), nothing is inserted and the answer is None.
        """
        read = tsv_files_read(files, len(columns))
        if read is None:
            return None
        texts, counts = read
        if sum(counts):
            self._insert_tsv_texts(table, columns, texts)
        return counts

    def _insert_tsv_texts(self, table: str, columns: Sequence[str], texts: Sequence[bytes]) -> None:
        """Append several texts of whole TabSeparated rows as one insert."""
        self._insert_tsv(table, columns, b"".join(texts))

    def insert_columns(self, table: str, columns: Sequence[str], values: Sequence[Sequence[Any]]) -> int:
        """Append rows given column by column (`values[i]` holds `columns[i]`); returns the row count."""
        payload, count = tsv_columns(values)
        if count:
            self._insert_tsv(table, columns, payload)
        return count


def tsv_files_read(files: Sequence[tuple[str, int]], fields: int) -> tuple[list[bytes], list[int]] | None:
    """The texts of (path, length) files and their row counts, or None when one is not whole rows of
    `fields` fields. Checked in bulk, by the numbers of newlines and tabs: no work per row.
    """
    texts, counts = [], []
    for path, length in files:
        with open(path, "rb") as handle:
            text = handle.read(length)
        rows = text.count(b"\n")
        if (
            len(text) != length
            or (text and not text.endswith(b"\n"))
            or text.count(b"\t") != rows * (fields - 1)
        ):
            return None
        texts.append(text)
        counts.append(rows)
    return texts, counts


_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\0": "\\0"})


def tsv_text(value: str) -> str:
    """A string as a TabSeparated field. Most values need no escaping: membership tests are cheaper."""
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value or "\0" in value:
        return value.translate(_ESCAPES)
    return value


_last_moment: tuple[Any, str] = (None, "")


def _tsv_datetime(value: datetime) -> str:
    # DateTime64(3) columns take epoch seconds with a fraction: no time-zone ambiguity.
    # Batches often share a timestamp, so the last conversion is remembered.
    global _last_moment
    last = _last_moment  # one tuple, replaced whole: safe to share between threads
    if last[0] is value:
        return last[1]
    moment = value if value.tzinfo else value.replace(tzinfo=UTC)
    millis = round(moment.timestamp() * 1000)
    text = f"{millis // 1000}.{millis % 1000:03d}"
    _last_moment = (value, text)
    return text


def _tsv_array(value: Any) -> str:
    return "[" + ",".join(_array_item(item) for item in value) + "]"


def _tsv_other(value: Any) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, str):
        return tsv_text(value)
    if isinstance(value, datetime):
        return _tsv_datetime(value)
    if isinstance(value, list | tuple):
        return _tsv_array(value)
    return str(value)


def _array_item(item: Any) -> str:
    if isinstance(item, str):
        return "'" + item.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return str(item)


def _column_text(values: Sequence[Any]) -> Sequence[str]:
    """One column as TSV fields. Uniform columns are converted by C-level maps, the rest value by value."""
    kinds = set(map(type, values))
    if kinds == {str}:
        joined = "".join(values)
        if "\\" in joined or "\t" in joined or "\n" in joined or "\r" in joined or "\0" in joined:
            return [value.translate(_ESCAPES) for value in values]
        return values
    if kinds == {int}:
        return list(map(str, values))
    if kinds == {datetime}:
        return list(map(_tsv_datetime, values))
    return list(map(_tsv_other, values))


def tsv_columns(columns: Sequence[Sequence[Any]]) -> tuple[bytes, int]:
    """TabSeparated text of rows given as columns, and the row count: the hot path of every ingestion.

    Each column is converted at once, which is several times faster in CPython than converting
    value by value.
    """
    if not columns or not columns[0]:
        return b"", 0
    texts = [_column_text(values) for values in columns]
    return ("\n".join(map("\t".join, zip(*texts, strict=True))) + "\n").encode(), len(columns[0])


def param_text(value: Any) -> str:
    """A query parameter as ClickHouse reads `{name:Type}` values (arrays in literal form)."""
    if isinstance(value, list | tuple):
        return "[" + ",".join(_array_item(item) for item in value) + "]"
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)
