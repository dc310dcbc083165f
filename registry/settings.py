"""GridProof settings: every value comes from the environment, with a safe default.

`DJANGO_ENV=development` (what `make run` and `make test` set) allows an insecure
built-in secret key and deterministic development signing and witness keys. Any other
value is production: the process refuses to start without `SECRET_KEY`,
`REGISTRY_SIGNING_KEY` and `REGISTRY_WITNESS_KEY`.
"""

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from registry.env import env_bool, env_int, env_list, env_str
from registry.schema_enums import ENUM_NAME_OVERRIDES

BASE_DIR = Path(__file__).resolve().parent.parent


DJANGO_ENV = env_str("DJANGO_ENV", "production")
DEVELOPMENT = DJANGO_ENV == "development"
DEBUG = env_bool("DEBUG", False)

SECRET_KEY = env_str("SECRET_KEY")
REGISTRY_SIGNING_KEY = env_str("REGISTRY_SIGNING_KEY")
REGISTRY_SIGNING_KEY_FILE = env_str(
    "REGISTRY_SIGNING_KEY_FILE", str(BASE_DIR / ".dev" / "signing.key")
)
if not REGISTRY_SIGNING_KEY and DEVELOPMENT and Path(REGISTRY_SIGNING_KEY_FILE).is_file():
    REGISTRY_SIGNING_KEY = Path(REGISTRY_SIGNING_KEY_FILE).read_text().strip()
# Log key rotation (ledger/keys.py, docs/operations.md "Rotating the log key"): the key to
# rotate to, staged before `manage.py rotate_signing_key` announces it; and the verifier key
# the log was first signed with, where `verify_ledger` starts following the key history.
REGISTRY_NEXT_SIGNING_KEY = env_str("REGISTRY_NEXT_SIGNING_KEY")
REGISTRY_FIRST_VKEY = env_str("REGISTRY_FIRST_VKEY")
# The key this registry cosigns other logs' checkpoints with as their witness (cosignature/v1):
# a key of its own, so that the log key and the witness key are compromised, rotated and
# trusted apart (ledger/keys.py).
REGISTRY_WITNESS_KEY = env_str("REGISTRY_WITNESS_KEY")

if not DEVELOPMENT:
    missing = [
        name
        for name, value in (
            ("SECRET_KEY", SECRET_KEY),
            ("REGISTRY_SIGNING_KEY", REGISTRY_SIGNING_KEY),
            ("REGISTRY_WITNESS_KEY", REGISTRY_WITNESS_KEY),
        )
        if not value
    ]
    if missing:
        raise ImproperlyConfigured(
            f"GridProof is running in production mode (DJANGO_ENV={DJANGO_ENV!r}) and "
            f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set. Set them in "
            "the environment (see README, 'Production'), or set DJANGO_ENV=development "
            "for a local, insecure setup."
        )
if not SECRET_KEY:
    SECRET_KEY = "django-insecure-gridproof-development-only"  # noqa: S105 - development mode only

REGISTRY_ORIGIN = env_str("REGISTRY_ORIGIN", "gridproof.localhost/registry")
REGISTRY_NAME = env_str("REGISTRY_NAME", "GridProof development registry")
# Empty: the identity document answers with the host each request came to, and links made
# outside a request use the development server's address (registry/public_url.py).
REGISTRY_BASE_URL = env_str("REGISTRY_BASE_URL", "")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]" if DEVELOPMENT else "")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "registry",
    "accounts",
    "ledger",
    "federation",
    "assets",
    "certificates",
    "charging",
    "contracts",  # before consumers and market: they register into its hooks by name
    "consumers",
    "market",
    "notifications",
    "web",
]

MIDDLEWARE = [
    "registry.middleware.RequestIdMiddleware",
    "registry.csp.ContentSecurityPolicyMiddleware",
    "registry.middleware.InputLimitsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "registry.urls"
WSGI_APPLICATION = "registry.wsgi.application"
ASGI_APPLICATION = "registry.asgi.application"
AUTH_USER_MODEL = "accounts.User"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
                "web.context.navigation",
            ],
        },
    },
]

# SQLite runs in IMMEDIATE mode: read-then-write transactions take the write lock at
# BEGIN, so concurrent writers queue instead of failing with "database is locked".
SQLITE_PATH = env_str("SQLITE_PATH", str(BASE_DIR / "db.sqlite3"))
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{SQLITE_PATH}"),
        conn_max_age=env_int("CONN_MAX_AGE", 600),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Django's backend without the per-request health check of a connection that worked
    # in the last second (registry/postgresql/base.py; docs/operations.md).
    DATABASES["default"]["ENGINE"] = "registry.postgresql"
USING_POSTGRES = DATABASES["default"]["ENGINE"] == "registry.postgresql"
# Hot fixed statements as server-side prepared statements (registry/prepared.py); false
# behind a pooler that moves a client's transactions between server sessions.
DATABASE_PREPARED_STATEMENTS = env_bool("DATABASE_PREPARED_STATEMENTS", True)
# The role the web, worker and beat processes connect as; `migrate`, run as the tables'
# owner, grants it what it needs and nothing that could rewrite the ledger
# (registry/db_roles.py, docs/operations.md "Database roles").
DATABASE_APP_ROLE = env_str("DATABASE_APP_ROLE", "")

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# The web app speaks English and Russian: the reader's choice (language switch, stored in
# a cookie) or else their browser's Accept-Language; dates and numbers follow the language.
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("ru", "Русский")]
LOCALE_PATHS = [BASE_DIR / "web" / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = DEVELOPMENT

# People log in to the web app (web/); staff also reach the admin from there.
LOGIN_URL = "web:login"
LOGIN_REDIRECT_URL = "web:dashboard"
LOGOUT_REDIRECT_URL = "web:home"
SESSION_ENGINE = "registry.sessions"  # database sessions; a malformed cookie is none
SESSION_COOKIE_AGE = 12 * 60 * 60  # a working day; the session ends with it
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"

# E-mail (password reset). Development prints mails on the console; production sends
# through the SMTP server named here.
EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.console.EmailBackend"
    if DEVELOPMENT
    else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "GridProof <registry@localhost>")

# Upload limits: bulk meter readings are streamed; this bounds one request body.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 64 * 1024 * 1024)
FILE_UPLOAD_MAX_MEMORY_SIZE = env_int("FILE_UPLOAD_MAX_MEMORY_SIZE", 5 * 1024 * 1024)
READINGS_UPLOAD_MAX_BYTES = env_int("READINGS_UPLOAD_MAX_BYTES", 64 * 1024 * 1024)
# Every other JSON body (registry/api/parsers.py): at most this many bytes (413 beyond) and
# this many levels of nesting (400 `json_too_deep` beyond).
API_JSON_MAX_BYTES = env_int("API_JSON_MAX_BYTES", 8 * 1024 * 1024)
API_JSON_MAX_DEPTH = env_int("API_JSON_MAX_DEPTH", 32)
# Path segments and query parameter values longer than this are refused with 400
# `parameter_too_long` before any view sees them (registry/middleware.py).
API_PARAMETER_MAX_LENGTH = env_int("API_PARAMETER_MAX_LENGTH", 1024)

# X-Forwarded-Proto is believed only when the operator says a TLS proxy is in front and
# it alone can reach the web processes (bound to loopback or a private address):
# otherwise any client could claim https and defeat the redirect and secure cookies.
TRUSTED_PROXY = env_bool("TRUSTED_PROXY", False)
if TRUSTED_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

if not DEVELOPMENT:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
    if not SECURE_HSTS_PRELOAD:
        # Preloading is a deliberate, hard-to-undo opt-in; off is not a deploy-check failure.
        SILENCED_SYSTEM_CHECKS = ["security.W021"]
    SECURE_CONTENT_TYPE_NOSNIFF = True

# Content-Security-Policy on every HTML page (registry/csp.py): everything from this origin,
# no inline script or style, no plugins, no framing. A view adds sources with csp_update.
CSP_POLICY = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'"],
    "img-src": ["'self'"],
    "font-src": ["'self'"],
    "connect-src": ["'self'"],
    "object-src": ["'none'"],
    "base-uri": ["'self'"],
    "form-action": ["'self'"],
    "frame-ancestors": ["'none'"],
}
CSP_REPORT_ONLY = env_bool("CSP_REPORT_ONLY", False)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticatedOrReadOnly"],
    "DEFAULT_PARSER_CLASSES": [
        "registry.api.parsers.LimitedJSONParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "registry.api.pagination.StandardPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": [
        "registry.api.filters.RegistryFilterBackend",
        "registry.api.ordering.StrictOrderingFilter",
    ],
    "DEFAULT_SCHEMA_CLASS": "registry.api.openapi.RegistryAutoSchema",
    "EXCEPTION_HANDLER": "registry.api.exceptions.api_exception_handler",
    "DEFAULT_THROTTLE_CLASSES": [
        # counters in fixed windows, not DRF's per-client lists (registry/api/throttling.py)
        "registry.api.throttling.AnonRateThrottle",
        "registry.api.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env_str("THROTTLE_ANON", "600/minute"),
        "user": env_str("THROTTLE_USER", "6000/minute"),
        "login": env_str("THROTTLE_LOGIN", "20/minute"),
        # Ledger, mirror and peer-to-peer endpoints: auditors and peer registries read
        # logs in bulk; their own scope keeps them apart from anonymous browsing.
        "ledger": env_str("THROTTLE_LEDGER", "12000/minute"),
    },
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "GridProof registry API",
    "DESCRIPTION": (
        "Renewable-energy-certificate registry: participants, devices, meter readings, "
        "certificates and a verifiable Merkle ledger. Errors share one shape: "
        '`{"code", "detail", "extra"}`.'
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    # Swagger UI and Redoc files come from drf-spectacular-sidecar, served by the app.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "registry.api.openapi.bound_parameters",
    ],
}

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": env_str("CACHE_URL"),
    }
    if env_str("CACHE_URL")
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
}

# Celery. No CELERY_BROKER_URL means no broker: tasks run eagerly in-process and
# `manage.py runregistry` drives the periodic schedule from a thread.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = "UTC"
CHECKPOINT_INTERVAL_SECONDS = env_int("CHECKPOINT_INTERVAL_SECONDS", 10)
CELERY_BEAT_SCHEDULE: dict[str, dict] = {}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "registry.logging.RequestIdFilter"}},
    "formatters": {
        "line": {
            "format": "%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s",
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["request_id"],
            "formatter": "line",
        },
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        # One INFO line per task run; the in-process scheduler runs several a second.
        "celery.app.trace": {"level": env_str("CELERY_TASK_LOG_LEVEL", "WARNING")},
        # WeasyPrint logs each layout step of every PDF at INFO.
        "weasyprint.progress": {"level": "WARNING"},
    },
}

# API tokens expire after this many days unless the request names its own (0: never).
API_TOKEN_DEFAULT_TTL_DAYS = env_int("API_TOKEN_DEFAULT_TTL_DAYS", 0)

# A request that cannot reach the database answers 503 `database_unavailable` with this
# Retry-After (seconds), for the API and the pages alike (registry/api/exceptions.py).
DATABASE_UNAVAILABLE_RETRY_AFTER = env_int("DATABASE_UNAVAILABLE_RETRY_AFTER", 5)

# --- Idempotency-Key (registry/idempotency.py) ---
# A POST's Idempotency-Key and its stored response are kept this long, then purged.
IDEMPOTENCY_KEY_TTL_HOURS = env_int("IDEMPOTENCY_KEY_TTL_HOURS", 24)
CELERY_BEAT_SCHEDULE["idempotency-keys-purge"] = {
    "task": "registry.tasks.idempotency_keys_purge_task",
    "schedule": 3600,
}

# --- Ledger (ledger/) --------------------------------------------------------------------
# The integrator is kicked on commit and swept every LEDGER_SWEEP_SECONDS; checkpoints are
# signed every CHECKPOINT_INTERVAL_SECONDS. The flag that debounces kicks is shared by web
# and worker processes through Redis (LEDGER_KICK_REDIS_URL, by default a Redis broker);
# without it the flag is per process and the sweep bounds the wait (see ledger/kick.py).
LEDGER_SWEEP_SECONDS = env_int("LEDGER_SWEEP_SECONDS", 1)
# Each checkpoint first commits the subject map of every entry before it (ledger/index.py),
# so histories proven at it are provably complete. Off only for tests that count entries.
LEDGER_SUBJECT_INDEX = env_bool("LEDGER_SUBJECT_INDEX", True)
LEDGER_KICK_REDIS_URL = env_str(
    "LEDGER_KICK_REDIS_URL",
    CELERY_BROKER_URL if CELERY_BROKER_URL.startswith(("redis://", "rediss://")) else "",
)
CELERY_BEAT_SCHEDULE["ledger-integrate"] = {
    "task": "ledger.tasks.ledger_integrate_task",
    "schedule": float(LEDGER_SWEEP_SECONDS),
    "kwargs": {"sweep": True},
}
CELERY_BEAT_SCHEDULE["ledger-checkpoint"] = {
    "task": "ledger.tasks.checkpoint_create_task",
    "schedule": float(CHECKPOINT_INTERVAL_SECONDS),
}
# The log as C2SP tlog-tiles static files, up to the latest checkpoint (empty: off); written
# after each new checkpoint and swept every CHECKPOINT_INTERVAL_SECONDS (ledger/tiles.py).
LEDGER_TILES_DIR = env_str("LEDGER_TILES_DIR", "")
if LEDGER_TILES_DIR:
    CELERY_BEAT_SCHEDULE["ledger-tiles"] = {
        "task": "ledger.tasks.ledger_tiles_write_task",
        "schedule": float(CHECKPOINT_INTERVAL_SECONDS),
    }

# --- Assets and metering (assets app) ---------------------------------------------------
# A reading above capacity x duration x this margin holds its batch for issuing-body review.
READINGS_CAPACITY_MARGIN = env_str("READINGS_CAPACITY_MARGIN", "1.1")
# Readings starting more than this many days ago hold their batch for review.
READINGS_BACKDATE_LIMIT_DAYS = env_int("READINGS_BACKDATE_LIMIT_DAYS", 62)
# Rows per submitted batch (the byte size is bounded by READINGS_UPLOAD_MAX_BYTES).
READINGS_BATCH_MAX_ROWS = env_int("READINGS_BATCH_MAX_ROWS", 500_000)
# Per-row errors listed in a rejection (all are counted).
READINGS_MAX_ERRORS_REPORTED = env_int("READINGS_MAX_ERRORS_REPORTED", 1000)
# Threads verifying Ed25519 signatures (0: one per CPU).
READINGS_VERIFY_THREADS = env_int("READINGS_VERIFY_THREADS", 0)
# OpenAPI enum names for the assets app's choice sets (several models have `kind`/`status`).

# --- Federation (federation/): peers, witnessing, anchoring, replication ------------------
# A checkpoint is anchored once ANCHOR_QUORUM witness peers have cosigned it. Anchoring
# and replication run every *_INTERVAL_SECONDS; calls to peers time out after
# FEDERATION_HTTP_TIMEOUT_SECONDS (per socket operation; twice that per response) and
# read at most FEDERATION_MAX_RESPONSE_BYTES; failures back off exponentially from
# FEDERATION_RETRY_BASE_SECONDS up to FEDERATION_RETRY_MAX_SECONDS.
ANCHOR_QUORUM = env_int("ANCHOR_QUORUM", 1)
FEDERATION_ANCHOR_INTERVAL_SECONDS = float(env_str("FEDERATION_ANCHOR_INTERVAL_SECONDS", "2"))
FEDERATION_REPLICATION_INTERVAL_SECONDS = float(
    env_str("FEDERATION_REPLICATION_INTERVAL_SECONDS", "5")
)
FEDERATION_HTTP_TIMEOUT_SECONDS = float(env_str("FEDERATION_HTTP_TIMEOUT_SECONDS", "5"))
FEDERATION_MAX_RESPONSE_BYTES = env_int("FEDERATION_MAX_RESPONSE_BYTES", 32 * 1024 * 1024)
FEDERATION_RETRY_BASE_SECONDS = float(env_str("FEDERATION_RETRY_BASE_SECONDS", "2"))
FEDERATION_RETRY_MAX_SECONDS = float(env_str("FEDERATION_RETRY_MAX_SECONDS", "300"))
# Replication fetches BUNDLE_SIZE entries per request from peers that serve entry bundles
# (GridProof registries), else JSON pages of PAGE_SIZE (the ledger API's maximum is 1000),
# CONCURRENCY requests in flight, and verifies and stores BATCH_SIZE entries at a time;
# one run stops after MAX_ENTRIES (0: no limit) and the next run continues.
FEDERATION_REPLICATION_PAGE_SIZE = env_int("FEDERATION_REPLICATION_PAGE_SIZE", 1000)
FEDERATION_REPLICATION_BUNDLE_SIZE = env_int("FEDERATION_REPLICATION_BUNDLE_SIZE", 10_000)
FEDERATION_REPLICATION_CONCURRENCY = env_int("FEDERATION_REPLICATION_CONCURRENCY", 4)
FEDERATION_REPLICATION_BATCH_SIZE = env_int("FEDERATION_REPLICATION_BATCH_SIZE", 20_000)
FEDERATION_REPLICATION_MAX_ENTRIES = env_int("FEDERATION_REPLICATION_MAX_ENTRIES", 500_000)
# Signed peer requests older or newer than this are refused (clock skew and replay window).
FEDERATION_PEER_REQUEST_MAX_SKEW_SECONDS = env_int("FEDERATION_PEER_REQUEST_MAX_SKEW_SECONDS", 300)
# The offending response kept with a piece of evidence is cut at this many bytes.
FEDERATION_EVIDENCE_MAX_BYTES = env_int("FEDERATION_EVIDENCE_MAX_BYTES", 1024 * 1024)
# An imported export's checkpoint needs this many cosignatures from witnesses we trust
# (ourselves and our other active peers), on top of the exporter's own signature.
FEDERATION_IMPORT_QUORUM = env_int("FEDERATION_IMPORT_QUORUM", 1)
if ANCHOR_QUORUM < 1:
    raise ImproperlyConfigured("ANCHOR_QUORUM must be at least 1.")
if FEDERATION_IMPORT_QUORUM < 0:
    raise ImproperlyConfigured("FEDERATION_IMPORT_QUORUM must be at least 0.")
CELERY_BEAT_SCHEDULE["federation-anchor"] = {
    "task": "federation.tasks.federation_anchor_task",
    "schedule": FEDERATION_ANCHOR_INTERVAL_SECONDS,
}
CELERY_BEAT_SCHEDULE["federation-deliver-exports"] = {
    "task": "federation.tasks.federation_deliver_exports_task",
    "schedule": FEDERATION_ANCHOR_INTERVAL_SECONDS,
}
CELERY_BEAT_SCHEDULE["federation-replicate"] = {
    "task": "federation.tasks.federation_replicate_task",
    "schedule": FEDERATION_REPLICATION_INTERVAL_SECONDS,
}

# --- Certificates (certificates/) ---------------------------------------------------------
# Bundles past their grid area's expiry date are expired every CERTIFICATE_EXPIRY_SECONDS;
# devices with the automatic hourly policy are issued every CERTIFICATE_AUTO_ISSUE_SECONDS
# (each complete hour once; readings batches may also kick
# certificates.tasks.certificate_auto_issue_device_task on commit).
CERTIFICATE_EXPIRY_SECONDS = env_int("CERTIFICATE_EXPIRY_SECONDS", 3600)
CERTIFICATE_AUTO_ISSUE_SECONDS = env_int("CERTIFICATE_AUTO_ISSUE_SECONDS", 300)
CELERY_BEAT_SCHEDULE["certificates-expire-due"] = {
    "task": "certificates.tasks.certificates_expire_due_task",
    "schedule": float(CERTIFICATE_EXPIRY_SECONDS),
}
CELERY_BEAT_SCHEDULE["contracts-calendar-tick"] = {
    "task": "contracts.tasks.contracts_calendar_tick_task",
    "schedule": float(os.environ.get("CONTRACTS_TICK_SECONDS", "3600")),
}
CELERY_BEAT_SCHEDULE["charging-bills-settle"] = {
    "task": "charging.tasks.charging_bills_settle_task",
    "schedule": float(os.environ.get("CHARGING_SETTLE_SECONDS", "3600")),
}
CELERY_BEAT_SCHEDULE["certificates-auto-issue"] = {
    "task": "certificates.tasks.certificates_auto_issue_task",
    "schedule": float(CERTIFICATE_AUTO_ISSUE_SECONDS),
}

# --- Consumers (consumers/) ---------------------------------------------------------------
# Communities' certificates go to their members by the key every
# COMMUNITY_DISTRIBUTION_SECONDS (each complete, issued hour of the last 7 days, once).
COMMUNITY_DISTRIBUTION_SECONDS = env_int("COMMUNITY_DISTRIBUTION_SECONDS", 3600)
CELERY_BEAT_SCHEDULE["consumers-distribute-certificates"] = {
    "task": "consumers.tasks.community_certificates_distribute_task",
    "schedule": float(COMMUNITY_DISTRIBUTION_SECONDS),
}

# --- Market (market/) ---------------------------------------------------------------------
# Energy slots whose gate has closed are cleared every MARKET_SLOT_CLEAR_SECONDS.
MARKET_SLOT_CLEAR_SECONDS = env_int("MARKET_SLOT_CLEAR_SECONDS", 10)
CELERY_BEAT_SCHEDULE["market-slots-clear"] = {
    "task": "market.tasks.market_slots_clear_due_task",
    "schedule": float(MARKET_SLOT_CLEAR_SECONDS),
}
# Cleared slots that have ended are settled against meter readings (same interval): a slot
# with missing readings waits until its market's settlement_grace_minutes run out.
CELERY_BEAT_SCHEDULE["market-slots-settle"] = {
    "task": "market.tasks.market_slots_settle_due_task",
    "schedule": float(MARKET_SLOT_CLEAR_SECONDS),
}
# Active trading agents decide for their market's next open slot (same interval; once per
# agent and slot, so this only picks up each new slot before its gate closes).
CELERY_BEAT_SCHEDULE["market-agents-run"] = {
    "task": "market.tasks.market_agents_run_due_task",
    "schedule": float(MARKET_SLOT_CLEAR_SECONDS),
}

# OCPI party id (3 characters) of this registry in exported Charge Detail Records.
CHARGING_OCPI_PARTY_ID = env_str("CHARGING_OCPI_PARTY_ID", "GPR")

# The MQTT meter gateway (`manage.py mqtt_gateway`) is off unless MQTT_BROKER_URL is set
# (mqtt://host:1883). Meters publish signed readings on <MQTT_TOPIC_PREFIX>/<serial>/readings.
MQTT_BROKER_URL = env_str("MQTT_BROKER_URL")
MQTT_TOPIC_PREFIX = env_str("MQTT_TOPIC_PREFIX", "gridproof/meters")
MQTT_CLIENT_ID = env_str("MQTT_CLIENT_ID", "gridproof-gateway")
MQTT_QUEUE_SIZE = env_int("MQTT_QUEUE_SIZE", 200)

# --- Notifications and webhooks (notifications/) -----------------------------------------
# Notifications are derived from integrated ledger entries every NOTIFICATIONS_DERIVE_SECONDS;
# bundles expiring within NOTIFICATIONS_EXPIRY_WARNING_DAYS are announced once a day.
# E-mail uses the EMAIL_* settings above (password reset shares them). Webhook POSTs time out after
# WEBHOOK_TIMEOUT_SECONDS and are retried WEBHOOK_RETRY_BASE_SECONDS x 2^(n-1) later (at
# most WEBHOOK_RETRY_MAX_SECONDS) until WEBHOOK_MAX_ATTEMPTS. Webhook URLs that resolve to
# private or loopback addresses are refused unless WEBHOOKS_ALLOW_PRIVATE_ADDRESSES (on by
# default only in development).
NOTIFICATIONS_DERIVE_SECONDS = float(env_str("NOTIFICATIONS_DERIVE_SECONDS", "2"))
NOTIFICATIONS_EXPIRY_WARNING_DAYS = env_int("NOTIFICATIONS_EXPIRY_WARNING_DAYS", 30)
WEBHOOK_TIMEOUT_SECONDS = float(env_str("WEBHOOK_TIMEOUT_SECONDS", "5"))
WEBHOOK_RETRY_BASE_SECONDS = float(env_str("WEBHOOK_RETRY_BASE_SECONDS", "10"))
WEBHOOK_RETRY_MAX_SECONDS = float(env_str("WEBHOOK_RETRY_MAX_SECONDS", "3600"))
WEBHOOK_MAX_ATTEMPTS = env_int("WEBHOOK_MAX_ATTEMPTS", 8)
WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = env_bool("WEBHOOKS_ALLOW_PRIVATE_ADDRESSES", DEVELOPMENT)
if WEBHOOK_MAX_ATTEMPTS < 1:
    raise ImproperlyConfigured("WEBHOOK_MAX_ATTEMPTS must be at least 1.")
CELERY_BEAT_SCHEDULE["notifications-derive"] = {
    "task": "notifications.tasks.notifications_derive_task",
    "schedule": NOTIFICATIONS_DERIVE_SECONDS,
}
CELERY_BEAT_SCHEDULE["notifications-certificates-expiring"] = {
    "task": "notifications.tasks.certificates_expiring_notify_task",
    "schedule": 24 * 3600.0,
}
CELERY_BEAT_SCHEDULE["notifications-email"] = {
    "task": "notifications.tasks.notification_emails_send_task",
    "schedule": NOTIFICATIONS_DERIVE_SECONDS,
}
CELERY_BEAT_SCHEDULE["webhook-deliveries"] = {
    "task": "notifications.tasks.webhook_deliveries_send_task",
    "schedule": NOTIFICATIONS_DERIVE_SECONDS,
}

# The schema's enum names, for enums that several models' fields share (registry/schema_enums.py).
SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"] = ENUM_NAME_OVERRIDES
