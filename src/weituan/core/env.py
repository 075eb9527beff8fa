"""Reading settings from environment variables; a bad value stops start-up with a clear message."""

import os
import re
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be one of 1/0/true/false/yes/no/on/off, not {raw!r}")


def env_int(name: str, default: int, *, minimum: int | None = None, maximum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, not {raw!r}") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, not {value}")
    if maximum is not None and value > maximum:
        raise ImproperlyConfigured(f"{name} must be at most {maximum}, not {value}")
    return value


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = os.environ.get(name, default)
    if value not in choices:
        raise ImproperlyConfigured(f"{name} must be one of {', '.join(choices)}, not {value!r}")
    return value


def env_url(name: str, schemes: tuple[str, ...]) -> str:
    """An optional URL whose scheme must be one of `schemes`; empty means 'not configured'."""
    value = os.environ.get(name, "").strip()
    if value and value.split("://", 1)[0] not in schemes:
        raise ImproperlyConfigured(f"{name} must start with one of {', '.join(s + '://' for s in schemes)}")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [part.strip() for part in raw.split(",") if part.strip()]


_DOTTED_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+")


def env_dotted_paths(name: str) -> list[str]:
    """A comma-separated list of Python dotted paths (`package.module.name`); empty by default."""
    paths = env_list(name, [])
    for path in paths:
        if not _DOTTED_PATH.fullmatch(path):
            raise ImproperlyConfigured(
                f"{name} must list dotted paths like package.module.name, not {path!r}"
            )
    return paths


def data_dir() -> Path:
    """The directory holding the SQLite file, uploaded media and the embedded analytics store."""
    path = Path(os.environ.get("WEITUAN_DATA_DIR", "data")).expanduser().resolve()
    if path.exists() and not path.is_dir():
        raise ImproperlyConfigured(f"WEITUAN_DATA_DIR {path} exists and is not a directory")
    return path


def data_dir_ensure(path: Path) -> None:
    """Create `path` (the data directory or one inside it) if missing; refuse one that cannot be made or
    written to, naming it, rather than fail later on the first file put there."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ImproperlyConfigured(f"WEITUAN_DATA_DIR: cannot create {path}: {exc.strerror}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise ImproperlyConfigured(f"WEITUAN_DATA_DIR: {path} is not writable")
