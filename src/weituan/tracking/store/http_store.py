"""The scaled-out analytics store: a ClickHouse server reached over its HTTP interface."""

from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

import httpx

from weituan.tracking.store.base import SESSION_SETTINGS, AnalyticsStore, StoreError, param_text


class HttpStore(AnalyticsStore):
    """CLICKHOUSE_URL like http://user:password@host:8123/?database=weituan (database defaults to weituan)."""

    kind = "clickhouse"

    def __init__(self, url: str, *, timeout: float = 30.0):
        parts = urlsplit(url)
        query = dict(parse_qsl(parts.query))
        self.database = query.pop("database", "weituan")
        # Credentials arrive percent-encoded in the URL (a password may hold ':' or '@').
        auth = (unquote(parts.username), unquote(parts.password or "")) if parts.username else None
        netloc = parts.hostname or "127.0.0.1"
        if parts.port:
            netloc = f"{netloc}:{parts.port}"
        self.base_url = urlunsplit((parts.scheme, netloc, parts.path or "/", "", ""))
        self._defaults = {**SESSION_SETTINGS, **query}
        self._client = httpx.Client(timeout=timeout, auth=auth)
        self._post("CREATE DATABASE IF NOT EXISTS " + self.database, with_database=False)

    def _post(
        self,
        sql: str,
        *,
        params: dict[str, Any] | None = None,
        body: bytes | None = None,
        with_database: bool = True,
    ) -> bytes:
        query: dict[str, Any] = dict(self._defaults)
        if with_database:
            query["database"] = self.database
        for name, value in (params or {}).items():
            query[f"param_{name}"] = param_text(value)
        if body is None:
            content = sql.encode()
        else:
            query["query"] = sql
            content = body
        try:
            response = self._client.post(self.base_url, params=query, content=content)
        except httpx.HTTPError as exc:
            raise StoreError(f"ClickHouse at {self.base_url} is unreachable: {exc}") from exc
        if response.status_code != 200:
            raise StoreError(response.text.strip()[:2000])
        return response.content

    def execute(self, sql: str, params: dict[str, Any] | None = None) -> None:
        self._post(sql, params=params)

    def _select_json(self, sql: str, params: dict[str, Any] | None) -> bytes:
        return self._post(sql.rstrip().rstrip(";") + "\nFORMAT JSONCompact", params=params)

    def _insert_tsv(self, table: str, columns: Sequence[str], payload: bytes) -> None:
        self._post(f"INSERT INTO {table} ({', '.join(columns)}) FORMAT TabSeparated", body=payload)

    def close(self) -> None:
        self._client.close()
