"""One settings module, read from the environment.

Embedded defaults (no variables set): SQLite and a filesystem Celery broker under ``var/``, so
``make run`` works on a machine with only Python. ``DATABASE_URL`` and ``REDIS_URL`` switch to
PostgreSQL and Redis. With ``DEBUG`` off, ``SECRET_KEY`` is required and the security settings
are those ``manage.py check --deploy`` asks for.
"""

from datetime import timedelta
from pathlib import Path

import dj_database_url
from celery.schedules import crontab
from csp.constants import NONE, SELF, UNSAFE_INLINE
from django.core.exceptions import ImproperlyConfigured

from config.env import current_signature_key_id, env_bool, env_int, env_list, env_str, parse_signature_keys

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("VAR_DIR", str(BASE_DIR / "var"))).resolve()

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY")
_KEY_FILE = VAR_DIR / "secret_key"  # written by `make install` on a developer's machine, never committed
if not SECRET_KEY and _KEY_FILE.is_file():
    SECRET_KEY = _KEY_FILE.read_text(encoding="utf-8").strip()
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    SECRET_KEY = "insecure-development-key-only-used-with-debug-on"  # noqa: S105

# Electronic signatures (21 CFR 11.70): each digest is an HMAC-SHA256 under a key that is not in the
# database. SIGNATURE_KEYS ("id:secret,id:secret") from the environment, else var/signature_keys (written by
# `make install`, one "id:secret" a line), else with DEBUG on a development key. Old ids stay listed so that
# their signatures stay verifiable; SIGNATURE_KEY_ID (default: the last listed) signs. Without any key and
# with DEBUG off, `check --deploy` fails (safety.E001) and signing refuses.
_SIGNATURE_KEY_FILE = VAR_DIR / "signature_keys"
if env_str("SIGNATURE_KEYS"):
    SIGNATURE_KEYS = parse_signature_keys(env_str("SIGNATURE_KEYS"), source="SIGNATURE_KEYS")
elif _SIGNATURE_KEY_FILE.is_file():
    SIGNATURE_KEYS = parse_signature_keys(
        _SIGNATURE_KEY_FILE.read_text(encoding="utf-8"), source=str(_SIGNATURE_KEY_FILE)
    )
elif DEBUG:
    SIGNATURE_KEYS = {"dev-insecure": "insecure-development-signature-key-used-only-with-debug-on"}
else:
    SIGNATURE_KEYS = {}
SIGNATURE_KEY_ID = current_signature_key_id(SIGNATURE_KEYS, env_str("SIGNATURE_KEY_ID"))

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "knox",
    "axes",
    "csp",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI and Redoc as static files of this site (no CDN)
    "django_filters",
    "simple_history",
    "core",
    "trial",
    "cohorts",
    "safety",
    "api",
    "dashboard",
    "exports",
    "reminders",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Before anything reads the body: an API body over API_MAX_BODY_BYTES is a 413 JSON, never read.
    "api.middleware.RequestBodyLimitMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "core.admin_login.AdminTwoFactorMiddleware",  # the admin needs the second factor for OTP_REQUIRED_ROLES
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    "core.middleware.SiteTimezoneMiddleware",
    "axes.middleware.AxesMiddleware",  # last: turns a locked-out login into the lockout page
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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
            ],
        },
    },
]

DATABASE_URL = env_str("DATABASE_URL")
if not DATABASE_URL:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASE_URL = f"sqlite:///{VAR_DIR / 'db.sqlite3'}"
# Persistent connections (a request reuses its worker's connection, and the statements core.statements plans
# once stay planned), checked before each request's first query so a broken one is replaced.
DATABASES = {
    "default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60), conn_health_checks=True)
}
if env_str("TEST_DATABASE_NAME"):  # parallel test runs on one PostgreSQL server each take their own
    DATABASES["default"]["TEST"] = {"NAME": env_str("TEST_DATABASE_NAME")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Wait for a lock instead of failing at once when web, worker and beat share the file.
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # psycopg prepares a statement at its first run on a connection, for the cursors that bind on the server:
    # only core.statements.planned_once's (Django's own cursors bind on the client and never prepare). Off
    # behind a pooler that cannot keep prepared statements (PgBouncer in transaction mode before 1.21, or with
    # max_prepared_statements = 0).
    DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = 0 if env_bool("DB_PREPARE", True) else None

# The dashboard's own login (sponsors have no admin access, so the admin's staff-only login would refuse them).
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard:index"
LOGOUT_REDIRECT_URL = "login"

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# The audit trail (21 CFR 11.10(e)): the History view only shows old versions. A correction goes through the
# service that owns the change; core.admin.AuditedAdmin also refuses a posted revert.
SIMPLE_HISTORY_REVERT_DISABLED = True

# --- brute force: django-axes on every password login (admin and dashboard), database handler ---
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses a locked-out username+address, right password or not
    "core.auth_backends.OneQueryModelBackend",  # Django's ModelBackend, permissions in one query
]
AXES_FAILURE_LIMIT = 5  # the 5th wrong password locks; the 6th attempt is refused whatever the password
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_COOLOFF_TIME = timedelta(minutes=env_int("AXES_COOLOFF_MINUTES", 30))
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"
AXES_LOCKOUT_TEMPLATE = "core/login_locked.html"
AXES_RESET_ON_SUCCESS = False  # a success in between does not wipe the count
AXES_SENSITIVE_PARAMETERS = ["username", "ip_address", "otp_token"]  # masked in the recorded attempts, as the password
AXES_VERBOSE = False  # its start-up banner would precede the JSON the management commands print
# --- two-factor admin login (django-otp TOTP; core.two_factor): these roles and every superuser ---
OTP_REQUIRED_FOR_ADMIN = True  # not from the environment: production cannot be started without it
OTP_REQUIRED_ROLES = ("Safety committee", "Investigator", "Data manager")  # core.roles' names
OTP_TOTP_ISSUER = "Cohort manager"
# The address is REMOTE_ADDR: behind a reverse proxy every client shares the proxy's, so the lock holds per username.

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-gb"
# Stored in UTC; shown in the site's time zone (core.middleware.SiteTimezoneMiddleware).
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(VAR_DIR / "static")))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # collectstatic fills it; whitenoise expects it
WHITENOISE_AUTOREFRESH = DEBUG
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# --- security (check --deploy clean when DEBUG is off) ---
# Content-Security-Policy (django-csp): no inline script and nothing from another origin, anywhere. Styles may
# be inline (the admin's and the app's style attributes); scripts are static files only. The Swagger UI page
# alone adds its CDN (config.urls).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF, UNSAFE_INLINE],
        "img-src": [SELF, "data:"],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 8 * 3600)
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]  # load-balancer probes speak plain HTTP
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True

EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 30)
EMAIL_FILE_PATH = env_str("EMAIL_FILE_PATH", str(VAR_DIR / "mail"))  # for the filebased backend
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "cohort-manager@localhost")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}

# --- REST API ---
# Hostile input (docs/api.md#hostile-input): the body's size is checked before it is read, its JSON
# nesting before it is decoded. Forms (the admin) keep Django's own limit, set here explicitly.
API_MAX_BODY_BYTES = env_int("API_MAX_BODY_BYTES", 1024 * 1024)
API_JSON_MAX_DEPTH = 64
DATA_UPLOAD_MAX_MEMORY_SIZE = 2621440  # 2.5 MiB, Django's default
DATA_UPLOAD_MAX_NUMBER_FIELDS = 1000
REST_FRAMEWORK = {
    # JSON only: the schema declares one media type per request body (a generated client gets one method per
    # operation), and a form or multipart body is a 415 `unsupported_media_type` in the JSON error contract.
    "DEFAULT_PARSER_CLASSES": ["api.parsers.JSONParser"],
    "TEST_REQUEST_DEFAULT_FORMAT": "json",  # APIClient.post(url, {...}) sends JSON, as every client must
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "api.authentication.HashedTokenAuthentication",
        "api.authentication.VerifiedSessionAuthentication",
    ],
    # Failed token authentications per client address (api.authentication): the 11th in a minute answers 429.
    "DEFAULT_THROTTLE_RATES": {"auth_failure": env_str("AUTH_FAILURE_RATE", "10/min")},
    "DEFAULT_PERMISSION_CLASSES": ["api.permissions.RolePermissions"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "api.exceptions.exception_handler",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 100,
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"]
    + (["rest_framework.renderers.BrowsableAPIRenderer"] if DEBUG else []),
}
# API tokens (django-rest-knox): only a SHA-512 digest is stored; each token expires. Lifetimes by role (days):
# sponsors' read-only dashboards 90, every other account (staff tokens can write) 30.
API_TOKEN_TTL_SPONSOR_DAYS = env_int("API_TOKEN_TTL_SPONSOR_DAYS", 90)
API_TOKEN_TTL_STAFF_DAYS = env_int("API_TOKEN_TTL_STAFF_DAYS", 30)
# core.tokens sets each token's expiry by role; knox's own default is the shorter one, never "no expiry".
REST_KNOX = {"AUTH_HEADER_PREFIX": "Token", "TOKEN_TTL": timedelta(days=API_TOKEN_TTL_STAFF_DAYS)}

SPECTACULAR_SETTINGS = {
    "TITLE": "Dose-escalation cohort manager API",
    "DESCRIPTION": "Trials, cohorts, participants, safety. Errors are JSON {code, message, fields}.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI from the drf-spectacular-sidecar package, served by whitenoise like every static file: the docs
    # work without internet and under the site's CSP (script-src 'self'; the split view has no inline script).
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # No validator badge: Swagger UI would otherwise load an image from validator.swagger.io.
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
    # One enum per choice set, named after its model (the staff and sponsor components share them).
    "ENUM_NAME_OVERRIDES": {
        "ParticipantStatusEnum": "cohorts.models.Participant.Status",
        "InfusionStatusEnum": "cohorts.models.Infusion.Status",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "api.schema.close_sponsor_components",
        "api.schema.document_error_responses",
    ],
}

# --- Celery and the cache ---
REDIS_URL = env_str("REDIS_URL")
# The cache holds the API's throttle counters, so every web process must share it: Redis when there is one,
# otherwise files under var/ (one machine, many processes).
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    if REDIS_URL
    else {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache", "LOCATION": str(VAR_DIR / "cache")}
}
CELERY_BROKER_URL = REDIS_URL or "filesystem://"
if not REDIS_URL:
    _queue_dir = VAR_DIR / "celery" / "queue"
    _processed_dir = VAR_DIR / "celery" / "processed"
    _control_dir = VAR_DIR / "celery" / "control"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir),
        "data_folder_out": str(_queue_dir),
        "processed_folder": str(_processed_dir),
        "store_processed": False,
        "control_folder": str(_control_dir),
    }
    for _folder in (_queue_dir, _processed_dir, _control_dir, VAR_DIR / "celery" / "results"):
        _folder.mkdir(parents=True, exist_ok=True)
else:
    # An unacknowledged task (acks_late) returns to the queue after the visibility timeout: it must be longer
    # than the longest task (CELERY_TASK_TIME_LIMIT), or a slow task would run twice while it still runs.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3600)}
CELERY_RESULT_BACKEND = REDIS_URL or f"file://{VAR_DIR / 'celery' / 'results'}"
CELERY_RESULT_EXPIRES = 24 * 3600
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 300)
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 240)
# Every task in this project is safe to run twice (a unique key in the database decides), so a
# task is acknowledged after it ran and requeued if its worker dies mid-way.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Celery's Django fix-up closes the database connection after every task (a new PostgreSQL backend, ~20-40 ms,
# per reminder delivered) unless this is set: it then closes only every N tasks, and config/celery.py replaces
# a broken or older-than-DB_CONN_MAX_AGE connection around each task, as Django does around a request.
CELERY_DB_REUSE_MAX = env_int("CELERY_DB_REUSE_MAX", 1000)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
HEARTBEAT_SECONDS = env_int("HEARTBEAT_SECONDS", 60)
REVIEW_CHECK_SECONDS = env_int("REVIEW_CHECK_SECONDS", 15 * 60)
FOLLOW_UP_SWEEP_SECONDS = env_int("FOLLOW_UP_SWEEP_SECONDS", 15 * 60)
# Reminders (reminders/services/delivery.py): the sweep claims due rows in batches; a row claimed longer than
# the claim timeout ago (its task lost) is claimed again; a failed send is retried with exponential backoff.
REMINDER_SWEEP_SECONDS = env_int("REMINDER_SWEEP_SECONDS", 60)
REMINDER_SWEEP_BATCH = env_int("REMINDER_SWEEP_BATCH", 500)
# Rows per delivery task (one transaction and one mail connection). A worker killed mid-task re-sends what that
# task's backend had accepted before the kill (after the claim timeout): 1 is the narrowest window, the slowest.
REMINDER_DELIVERY_BATCH = env_int("REMINDER_DELIVERY_BATCH", 25)
REMINDER_CLAIM_TIMEOUT_SECONDS = env_int("REMINDER_CLAIM_TIMEOUT_SECONDS", 15 * 60)
REMINDER_RETRY_SECONDS = env_int("REMINDER_RETRY_SECONDS", 60)
REMINDER_MAX_ATTEMPTS = env_int("REMINDER_MAX_ATTEMPTS", 8)
CELERY_BEAT_SCHEDULE = {
    "heartbeat": {"task": "core.tasks.heartbeat", "schedule": float(HEARTBEAT_SECONDS)},
    # A cohort whose last DLT window has ended goes to review without anyone hunting for it.
    "open-due-safety-reviews": {"task": "safety.tasks.open_due_reviews", "schedule": float(REVIEW_CHECK_SECONDS)},
    # Every signature re-verified daily (00:30 UTC, 08:30 in Asia/Shanghai); a break records an IntegrityAlert.
    "verify-signatures-daily": {"task": "safety.tasks.verify_signatures_daily", "schedule": crontab(hour=0, minute=30)},
    # Visits nobody recorded by the end of their window (site date) become missed; participants complete or are
    # flagged lost to follow-up. One task per trial.
    "sweep-follow-up": {"task": "cohorts.tasks.sweep_follow_up", "schedule": float(FOLLOW_UP_SWEEP_SECONDS)},
    # A sweep that waited longer than its interval is dropped: the next one claims the same rows.
    "sweep-due-reminders": {
        "task": "reminders.tasks.sweep_due_reminders",
        "schedule": float(REMINDER_SWEEP_SECONDS),
        "options": {"expires": float(REMINDER_SWEEP_SECONDS)},
    },
}
