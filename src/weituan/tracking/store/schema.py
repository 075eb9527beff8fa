"""Versioned schema of the analytics store: numbered .sql files applied once, in order, on first use."""

import logging
import re
import threading
from importlib import resources

from weituan.tracking.store.base import AnalyticsStore

logger = logging.getLogger(__name__)
_lock = threading.Lock()
_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")

_LEDGER = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version UInt32,
    name String,
    applied_at DateTime64(3, 'UTC') DEFAULT now64(3)
) ENGINE = MergeTree ORDER BY version
"""


def schema_files() -> list[tuple[int, str, str]]:
    """(version, name, sql) of every migration shipped with the code, oldest first."""
    found = []
    for entry in resources.files("weituan.tracking.store.migrations").iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append((int(match.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    return sorted(found)


def schema_statements(sql: str) -> list[str]:
    """Statements of a migration file: separated by a `;` that ends a line; `--` comments dropped."""
    kept = "\n".join(line for line in sql.splitlines() if not line.strip().startswith("--"))
    return [part.strip() for part in re.split(r";\s*$", kept, flags=re.MULTILINE) if part.strip()]


def schema_migrate(store: AnalyticsStore) -> list[int]:
    """Apply the migrations the store has not seen; returns the versions applied now.

    Statements use IF NOT EXISTS, so two processes migrating one server at once converge.
    """
    with _lock:
        store.execute(_LEDGER)
        applied = {int(row["version"]) for row in store.query("SELECT version FROM schema_migrations")}
        done = []
        for version, name, sql in schema_files():
            if version in applied:
                continue
            for statement in schema_statements(sql):
                store.execute(statement)
            store.insert("schema_migrations", ("version", "name"), [(version, name)])
            logger.info("analytics store migrated to %s", name)
            done.append(version)
        return done
