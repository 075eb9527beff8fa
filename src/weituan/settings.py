"""Django settings, read from environment variables (see README.md for the list)."""

import secrets
import sys
import tempfile
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP  # type: ignore[attr-defined]

from weituan.core.env import (
    data_dir,
    data_dir_ensure,
    env_bool,
    env_choice,
    env_dotted_paths,
    env_int,
    env_list,
    env_str,
    env_url,
)
from weituan.core.money import MINOR_UNITS

BASE_DIR = Path(__file__).resolve().parent
_UNDER_PYTEST = "pytest" in sys.modules
PROFILE = env_choice(
    "WEITUAN_PROFILE", "test" if _UNDER_PYTEST else "dev", ("dev", "demo", "production", "test")
)
if PROFILE == "test" and not env_str("WEITUAN_DATA_DIR"):
    DATA_DIR = Path(tempfile.mkdtemp(prefix="weituan-test-"))
else:
    DATA_DIR = data_dir()
data_dir_ensure(DATA_DIR)
PRODUCTION = PROFILE == "production"
DEBUG = env_bool("WEITUAN_DEBUG", PROFILE == "dev")


def _secret_key() -> str:
    key = env_str("WEITUAN_SECRET_KEY")
    if key:
        if PRODUCTION and len(key) < 50:
            raise ImproperlyConfigured("WEITUAN_SECRET_KEY must be at least 50 characters in production")
        return key
    if PRODUCTION:
        raise ImproperlyConfigured("WEITUAN_SECRET_KEY is required when WEITUAN_PROFILE=production")
    # Outside production a key is kept in the data directory so sessions survive a restart.
    path = DATA_DIR / "secret_key"
    if path.exists():
        return path.read_text().strip()
    generated = secrets.token_urlsafe(50)
    path.write_text(generated)
    path.chmod(0o600)
    return generated


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env_list("WEITUAN_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", "testserver"])
SITE_URL = env_str("WEITUAN_SITE_URL", "http://127.0.0.1:8000").rstrip("/")
SITE_NAME = env_str("WEITUAN_SITE_NAME", "Weituan 微团")

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_tasks_db",
    "weituan.core",
    "weituan.accounts",
    "weituan.microblog",
    "weituan.microblog.timelines",
    "weituan.microblog.search",
    "weituan.deals",
    "weituan.push",
    "weituan.tracking",
    "weituan.insights",
    "weituan.simulate",
    "weituan.web",
]

MIDDLEWARE = [
    "weituan.core.cors.ApiCorsMiddleware",  # browser clients of other sites may call the APIs
    "django.middleware.security.SecurityMiddleware",
    "weituan.middleware.StaticFilesMiddleware",  # WhiteNoise, async-capable (see the module)
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "weituan.api.api_method_errors",  # a method an API endpoint does not take: JSON, as its errors
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "weituan.accounts.middleware.LastSeenMiddleware",  # who is active, for fan-out and instance stats
    "django.contrib.messages.middleware.MessageMiddleware",
    "weituan.middleware.HtmxLoginMiddleware",  # an htmx tap after the session ended: told, not swapped in
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    # A NUL character anywhere in what a request sends: refused before any view reads it. Last, so the
    # refusal carries every header the middleware above add, and none of them has read a value yet.
    "weituan.middleware.NulCharactersMiddleware",
]

ROOT_URLCONF = "weituan.urls"
ASGI_APPLICATION = "weituan.asgi.application"
AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "accounts:login"
CSRF_FAILURE_VIEW = "weituan.web.responses.csrf_failure"
LOGIN_REDIRECT_URL = "web:home"
LOGOUT_REDIRECT_URL = "web:home"
# What following a friend's invite link earns, called when the invited person signs up or logs in
# (see accounts.invites): accounts cannot call the apps above it, so they are named here.
ACCOUNTS_INVITATION_HANDLERS = ["weituan.deals.services.referrals.referral_for_invitation"]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.template.context_processors.csp",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- databases -------------------------------------------------------------------------------------
DATABASE_URL = env_url("DATABASE_URL", ("postgres", "postgresql", "sqlite"))
if DATABASE_URL:
    DATABASES = {
        "default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("WEITUAN_CONN_MAX_AGE", 0))
    }
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        DATABASES["default"].setdefault("OPTIONS", {})
        DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
        if env_bool("WEITUAN_DB_POOL", True):
            # A pool of connections per server process, each lent to a request and taken back at its
            # end. Without it, ASGI (which runs each request's sync code on a thread of its own) opens a
            # connection per request, and persistent ones pile up until the server refuses clients.
            # Persistent connections and the pool exclude each other; the pool checks a connection
            # before lending it. Under ASGI the front paths' threads (home 4, posting 2, orders 2) keep
            # theirs between requests, so the default leaves Django's own requests a dozen.
            DATABASES["default"]["CONN_MAX_AGE"] = 0
            DATABASES["default"]["OPTIONS"]["pool"] = {
                "min_size": env_int("WEITUAN_DB_POOL_MIN", 1, minimum=0),
                "max_size": env_int("WEITUAN_DB_POOL_MAX", 20, minimum=1),
                "timeout": env_int("WEITUAN_DB_POOL_TIMEOUT", 30, minimum=1),
            }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(DATA_DIR / "weituan.sqlite3"),
            # Opening the file and running the PRAGMAs below on every request costs more than the
            # queries of a timeline read, so the serving thread keeps its connection.
            "CONN_MAX_AGE": env_int("WEITUAN_CONN_MAX_AGE", 600),
            "OPTIONS": {
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
                "init_command": (
                    "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=20000;"
                    " PRAGMA cache_size=-65536; PRAGMA mmap_size=268435456; PRAGMA temp_store=MEMORY;"
                ),
            },
        }
    }
IS_POSTGRES = DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- cache and Redis -------------------------------------------------------------------------------
REDIS_URL = env_url("REDIS_URL", ("redis", "rediss", "unix"))
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "weituan.core.cache.RedisCacheOrMiss", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "weituan"}}
# Every Redis key the product writes starts with this, so several instances (or test runs) can share a server.
REDIS_KEY_PREFIX = env_str("WEITUAN_REDIS_PREFIX", "wt:")

# --- background tasks ------------------------------------------------------------------------------
# Tests run tasks inline when their enqueueing transaction commits (see conftest `run_on_commit`).
_DEFAULT_TASK_BACKEND = (
    "django.tasks.backends.immediate.ImmediateBackend"
    if PROFILE == "test"
    else "django_tasks_db.DatabaseBackend"
)
TASKS = {"default": {"BACKEND": env_str("WEITUAN_TASK_BACKEND", _DEFAULT_TASK_BACKEND)}}
# The server process runs a task worker thread unless told not to (then run `weituan worker`).
EMBEDDED_WORKER = env_bool("WEITUAN_EMBEDDED_WORKER", True)
# Idempotent sweeps enqueued on a timer by the process that runs the worker: (task path, seconds).
PERIODIC_TASKS = [
    ("weituan.deals.tasks.deals_sweep_task", env_int("WEITUAN_DEALS_SWEEP_SECONDS", 60, minimum=1)),
    ("weituan.tracking.tasks.outbox_move_task", env_int("WEITUAN_OUTBOX_MOVE_SECONDS", 15, minimum=1)),
    ("weituan.microblog.timelines.tasks.fanout_jobs_prune_task", 3600),
    ("weituan.microblog.timelines.tasks.fanout_sweep_task", 300),
    ("weituan.microblog.timelines.tasks.mutes_expired_delete_task", 3600),
    ("weituan.core.idempotency.idempotency_records_prune_task", 3600),
    ("weituan.core.task_runs.task_runs_prune_task", 600),
]
# How long finished task runs are kept (the database task backend's rows): those that succeeded, in
# hours, and those that failed, in days, for an operator to look into.
TASK_RUNS_KEEP_HOURS = env_int("WEITUAN_TASK_RUNS_KEEP_HOURS", 1, minimum=1)
TASK_FAILURES_KEEP_DAYS = env_int("WEITUAN_TASK_FAILURES_KEEP_DAYS", 7, minimum=1)
# How long a write's Idempotency-Key is remembered (its retry answered with the first result).
IDEMPOTENCY_KEEP_HOURS = env_int("WEITUAN_IDEMPOTENCY_HOURS", 24, minimum=1)

# --- analytics store -------------------------------------------------------------------------------
CLICKHOUSE_URL = env_url("CLICKHOUSE_URL", ("http", "https"))
CHDB_PATH = DATA_DIR / "chdb"
# The embedded store runs in a child process of its own (tests open it in process: faster to start).
CHDB_PROCESS = env_bool("WEITUAN_CHDB_PROCESS", PROFILE != "test")

# --- micro-blog ------------------------------------------------------------------------------------
POST_MAX_WEIGHTED_LENGTH = env_int("WEITUAN_POST_MAX_LENGTH", 280, minimum=10, maximum=100_000)
TIMELINE_CAP = env_int("WEITUAN_TIMELINE_CAP", 800, minimum=20)
FANOUT_FOLLOWER_THRESHOLD = env_int("WEITUAN_FANOUT_THRESHOLD", 10_000, minimum=1)
# On SQLite, how long a post's fan-out task waits before a worker may claim it, gathering the posts
# written meanwhile into its run (see microblog.timelines.tasks.fanout_deliver_enqueue); none in tests,
# which run the worker right after posting.
FANOUT_GATHER_MS = env_int(
    "WEITUAN_FANOUT_GATHER_MS", 0 if PROFILE == "test" else 100, minimum=0, maximum=10_000
)
# The streaming API (ASGI only): the streams one server process serves at most, and the seconds between
# the `:thump` comments that tell a quiet stream's client it is alive.
STREAMING_MAX_STREAMS = env_int("WEITUAN_STREAMING_MAX_STREAMS", 500, minimum=1)
STREAMING_HEARTBEAT_SECONDS = env_int("WEITUAN_STREAMING_HEARTBEAT", 15, minimum=1)
FANOUT_ACTIVE_DAYS = env_int("WEITUAN_FANOUT_ACTIVE_DAYS", 30, minimum=1)
MEDIA_MAX_BYTES = env_int("WEITUAN_MEDIA_MAX_BYTES", 10 * 1024 * 1024, minimum=1024)
RATE_LIMIT_WRITES_PER_MINUTE = env_int("WEITUAN_RATE_LIMIT_WRITES", 300, minimum=1)
MASTODON_VERSION = "4.5.0"

# --- deals -----------------------------------------------------------------------------------------
# PostgreSQL: solo wallet orders of one deal arriving together are written in one transaction
# (deals.services.combined); off, each order is a transaction of its own.
DEALS_CHECKOUT_COMBINE = env_bool("WEITUAN_CHECKOUT_COMBINE", True)
DEALS_RESERVATION_MINUTES = env_int("WEITUAN_RESERVATION_MINUTES", 15, minimum=1)
DEALS_TEAM_WINDOW_HOURS = env_int("WEITUAN_TEAM_WINDOW_HOURS", 24, minimum=1)
DEALS_REFERRAL_CREDIT = env_int("WEITUAN_REFERRAL_CREDIT", 500, minimum=0)  # minor units per referral
# The currency of that credit, whatever the currency of the friend's order: a promotion of the platform's.
DEALS_REFERRAL_CURRENCY = env_choice("WEITUAN_REFERRAL_CURRENCY", "CNY", tuple(sorted(MINOR_UNITS)))
DEALS_REFERRAL_CAP = env_int("WEITUAN_REFERRAL_CAP", 10, minimum=0)  # credited referrals per inviter
DEALS_REFERRAL_HOURS = env_int("WEITUAN_REFERRAL_HOURS", 72, minimum=1)
# Payment providers a buyer may choose besides the built-in wallet: dotted paths, each to a gateway class
# or a function returning one (a hosted provider's reads its own address and secrets), registered when
# the app starts; a path that does not give a gateway stops start-up (deals/services/gateways.py).
DEALS_PAYMENT_GATEWAYS = env_dotted_paths("WEITUAN_PAYMENT_GATEWAYS")

# --- email -----------------------------------------------------------------------------------------
_MAIL_TO_CONSOLE = env_bool("WEITUAN_EMAIL_TO_CONSOLE", PROFILE in ("dev", "demo"))
MAILERS = {
    "default": {
        "BACKEND": (
            "weituan.core.console_mail.ConsoleEmailBackend"
            if _MAIL_TO_CONSOLE
            else "django.core.mail.backends.smtp.EmailBackend"
        ),
        "OPTIONS": {}
        if _MAIL_TO_CONSOLE
        else {
            "host": env_str("WEITUAN_SMTP_HOST", "127.0.0.1"),
            "port": env_int("WEITUAN_SMTP_PORT", 25, minimum=1, maximum=65535),
            "username": env_str("WEITUAN_SMTP_USER"),
            "password": env_str("WEITUAN_SMTP_PASSWORD"),
            "use_tls": env_bool("WEITUAN_SMTP_TLS", False),
            "timeout": 10,
        },
    }
}
DEFAULT_FROM_EMAIL = env_str("WEITUAN_FROM_EMAIL", "Weituan <noreply@weituan.localhost>")

# --- i18n, static, media ---------------------------------------------------------------------------
LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_I18N = True
TIME_ZONE = env_str("WEITUAN_TIME_ZONE", "Asia/Shanghai")
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = DATA_DIR / "static"
data_dir_ensure(STATIC_ROOT)
MEDIA_URL = "/media/"
MEDIA_ROOT = DATA_DIR / "media"
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

PASSWORD_HASHERS = (
    ["django.contrib.auth.hashers.MD5PasswordHasher"]
    if PROFILE == "test"
    else [
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
        "django.contrib.auth.hashers.ScryptPasswordHasher",
    ]
)
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 8}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

# --- security --------------------------------------------------------------------------------------
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF, CSP.UNSAFE_INLINE],
    "img-src": [CSP.SELF, "data:", "blob:"],
    "connect-src": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
    "form-action": [CSP.SELF],
    "base-uri": [CSP.SELF],
}
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "strict-origin-when-cross-origin"
if PRODUCTION:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env_bool("WEITUAN_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = env_int("WEITUAN_HSTS_SECONDS", 31_536_000, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    CSRF_TRUSTED_ORIGINS = env_list("WEITUAN_CSRF_TRUSTED_ORIGINS", [SITE_URL])

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("WEITUAN_LOG_LEVEL", "WARNING")},
    "loggers": {
        "weituan": {"level": env_str("WEITUAN_LOG_LEVEL", "INFO"), "propagate": True},
        # One line per task run would drown the server console; failures are still logged.
        "django_tasks_db": {"level": "WARNING", "propagate": True},
        "django.tasks": {"level": "WARNING", "propagate": True},
    },
}
