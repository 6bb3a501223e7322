"""Configuration: the defaults, the layers over them, and what derives from them.

Layers, later ones win: these defaults, ``instance/config.py``, ``SENDAUTH_*`` environment
variables (values parsed as JSON where they can be, so ``SENDAUTH_TRANSACTION_TTL_SECONDS=60``
is a number), then the test config given to ``create_app``. ``layered`` reads the first three,
for the app and for gunicorn.conf.py alike: this module uses the standard library only, so
gunicorn's master loads it without importing the app (dispatcher_process.py says why).
"""
import json
import os
import secrets
import types
from pathlib import Path

ENV_PREFIX = "SENDAUTH"
PROJECT_ROOT = Path(__file__).resolve().parent.parent

PAGERDUTY_US_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"


class ConfigurationError(RuntimeError):
    """The app cannot start as configured; the message says what to set."""


DEFAULTS = {
    "ENV": "development",
    "SECRET_KEY": None,
    "SQLALCHEMY_DATABASE_URI": None,
    # localhost, not 127.0.0.1: WebAuthn (passkeys) accepts a host name, never an IP address.
    "BASE_URL": "http://localhost:5000",
    "ENCRYPTION_KEY": None,
    "REDIS_URL": None,
    "REDIS_CHANNEL_PREFIX": "sendauth",
    "PAGERDUTY_EVENTS_URL": PAGERDUTY_US_EVENTS_URL,
    "PAGERDUTY_CONNECT_TIMEOUT": 3.05,
    "PAGERDUTY_READ_TIMEOUT": 10.0,
    # Seconds for each step of a conversation with the SMTP server (connect, each reply).
    "SMTP_TIMEOUT": 10.0,
    # A CA bundle for a mail server whose certificate a private CA signed; None: the system's.
    "SMTP_CA_FILE": None,
    "TWILIO_API_URL": "https://api.twilio.com",
    "TWILIO_CONNECT_TIMEOUT": 3.05,
    "TWILIO_READ_TIMEOUT": 10.0,
    "SLACK_API_URL": "https://slack.com/api",
    "SLACK_CONNECT_TIMEOUT": 3.05,
    "SLACK_READ_TIMEOUT": 10.0,
    "PASSWORD_HASH_METHOD": "scrypt",
    # The organisation's names (e.g. ["Acme", "Acme Corp"]): a password mostly made of them
    # is refused, as one made of the person's own name is.
    "ORGANISATION_NAMES": [],
    "TRANSACTION_TTL_SECONDS": 300,
    # An enrolment link or invitation works once, for this long.
    "ENROLMENT_TTL_SECONDS": 86400,
    # "thread": the web process runs the dispatcher; "off": `flask --app wsgi worker` does.
    # (gunicorn.conf.py also knows "process": it starts that worker and gives its workers "off".)
    # None: "thread"; under gunicorn, "process" when REDIS_URL is set.
    "DISPATCHER": None,
    "DISPATCHER_IDLE_SECONDS": 5.0,
    # `make run` sets it: `flask run` migrates when the database is behind and makes sure
    # there is an admin (cli.prepare) in its own start, instead of two commands before it.
    "PREPARE_ON_RUN": False,
    "DELIVERY_LEASE_SECONDS": 60,
    "DELIVERY_MAX_ATTEMPTS": 12,
    "DELIVERY_BACKOFF_BASE_SECONDS": 2.0,
    "DELIVERY_BACKOFF_CAP_SECONDS": 300.0,
    # After a 429 without Retry-After, wait at least this long: the provider asked to slow down.
    "DELIVERY_RATE_LIMITED_FLOOR_SECONDS": 10.0,
    # Per channel: at most this many sends in this many seconds (PagerDuty: 120 a minute a key).
    # 61, not 60: a send is counted here when it is claimed and by PagerDuty when it arrives,
    # so with a window of exactly 60 s the first sends of the next minute came a few ms early
    # and were refused (8 of 180 in `make bench-dispatch`).
    "DELIVERY_RATE_LIMITS": {"pagerduty": [120, 61]},
    "SSE_HEARTBEAT_SECONDS": 15.0,
    "SSE_MAX_SECONDS": 300.0,
    "STREAMS_PER_USER": 6,
    # [how many, per seconds]: authentication requests a requestor may send, one requestor may
    # send one user, and a user be sent by everyone together.
    "SEND_LIMIT_PER_REQUESTOR": [30, 600],
    "SEND_LIMIT_PER_REQUESTOR_AND_USER": [5, 600],
    "SEND_LIMIT_PER_USER": [15, 600],
    # 5,000 per gevent worker: measured by bench/fanout.py within its targets (README).
    "STREAMS_PER_PROCESS": 5000,
    # A signed-in session ends after this long unused, and this long after signing in.
    "SESSION_IDLE_SECONDS": 12 * 3600,
    "SESSION_MAX_SECONDS": 30 * 86400,
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "SESSION_COOKIE_SECURE": None,
    "MAX_CONTENT_LENGTH": 64 * 1024,
    # A form left open overnight still posts; the token is bound to the session instead.
    "WTF_CSRF_TIME_LIMIT": None,
    # Over HTTPS Flask-WTF would also demand a same-site Referer, which the authentication
    # page (Referrer-Policy: no-referrer, as its address holds the token) never lets a browser
    # send: its form would always fail. The session-bound token and the SameSite cookie decide.
    "WTF_CSRF_SSL_STRICT": False,
    # hide_parameters: a failing statement's error (logged with its traceback) names no
    # values, which can be password hashes, ciphertexts or what a user typed.
    "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True, "hide_parameters": True},
    # How long a write waits for another connection's write lock on SQLite before the person
    # gets the "database busy" page (and /healthz a 503).
    "SQLITE_BUSY_TIMEOUT_SECONDS": 5.0,
    # Rate limits per client address (Flask-Limiter's notation). Sign-in counts failed
    # attempts, per address and per email; the authentication page counts every request.
    "RATELIMIT_ENABLED": True,
    # None: Redis when REDIS_URL is set (shared by every process), else this process's memory.
    "RATELIMIT_STORAGE_URI": None,
    "LOGIN_RATE_LIMIT": "10 per minute",
    # Passkey sign-in challenges and answers per client address (the page asks for one on
    # load, for the browser's passkey autofill).
    "PASSKEY_SIGN_IN_RATE_LIMIT": "30 per minute",
    # Wrong passwords typed by one signed-in user or answer (a proof, a password change, a
    # password verifying a request), counted per user whoever types them.
    "PASSWORD_CHECK_RATE_LIMIT": "10 per 15 minutes",
    # WebAuthn challenges made for one user (each options request makes one).
    "PASSKEY_OPTIONS_RATE_LIMIT": "20 per minute",
    "AUTHENTICATE_RATE_LIMIT": "30 per minute",
    # An answer page left open asks every ANSWER_STATUS_POLL_SECONDS whether its request has
    # ended; the limit leaves room for two such pages from one address.
    "ANSWER_STATUS_POLL_SECONDS": 3.0,
    "ANSWER_STATUS_RATE_LIMIT": "60 per minute",
    # PagerDuty's webhooks: a few per request (triggered, acknowledged, resolved, ...), from
    # PagerDuty's addresses, so far more than a person's page.
    "WEBHOOK_RATE_LIMIT": "600 per minute",
    # Requests per API key (Flask-Limiter's notation), and the longest ?wait= an API client
    # gets on a transaction (the document says 60 s; tests shorten it).
    "API_RATE_LIMIT": "600 per minute",
    "API_MAX_WAIT_SECONDS": 60,
    # Outgoing webhooks: https only to public addresses unless private networks are allowed
    # (tests, a development receiver); Standard Webhooks' retry schedule (seconds after each
    # failure, with +-10% jitter); a request's time limit; how much of an answer is read; how
    # long an endpoint may fail everything before it is turned off; the old secret's overlap.
    "WEBHOOKS_ALLOW_PRIVATE_NETWORKS": False,
    "WEBHOOK_RETRY_SCHEDULE": [0, 5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400],
    "WEBHOOK_RETRY_AFTER_CAP_SECONDS": 86400,
    "WEBHOOK_TIMEOUT_SECONDS": 15.0,
    "WEBHOOK_ANSWER_MAX_BYTES": 4096,
    "WEBHOOK_DISABLE_AFTER_SECONDS": 3 * 86400,
    "WEBHOOK_SECRET_OVERLAP_SECONDS": 86400,
    "WEBHOOK_CONCURRENCY": 16,
    "WEBHOOK_LEASE_SECONDS": 60,
    # Behind a reverse proxy: how many proxies' X-Forwarded-For entries to trust (0: none).
    "PROXY_FIX_X_FOR": 0,
}

SECRET_KEY_FILE = "secret_key"


def instance_path(environ=os.environ):
    """The instance folder (instance/config.py, the development database and secret key):
    SENDAUTH_INSTANCE_PATH, else ``instance/`` at the top of the repository."""
    return environ.get(f"{ENV_PREFIX}_INSTANCE_PATH") or str(PROJECT_ROOT / "instance")


def layered(instance_folder, environ=os.environ):
    """The settings as the layers give them: DEFAULTS, then ``instance/config.py``'s upper-case
    names, then SENDAUTH_* environment variables (as Flask's ``from_prefixed_env`` reads them:
    JSON where it parses, ``A__B`` for key B of the dict A). Nothing derived yet (``derive``)."""
    config = dict(DEFAULTS)
    config.update(_instance_file(Path(instance_folder) / "config.py"))
    prefix = f"{ENV_PREFIX}_"
    for name in sorted(k for k in environ if k.startswith(prefix)):
        value = environ[name]
        try:
            value = json.loads(value)
        except ValueError:
            pass
        *parents, key = name[len(prefix):].split("__")
        inside = config
        for parent in parents:
            inside[parent] = dict(inside.get(parent) or {})  # DEFAULTS' own dicts stay as they are
            inside = inside[parent]
        inside[key] = value
    return config


def _instance_file(path):
    """The upper-case names an ``instance/config.py`` sets; nothing when there is none."""
    try:
        source = path.read_bytes()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return {}
    module = types.ModuleType("config")
    module.__file__ = str(path)
    exec(compile(source, str(path), "exec"), module.__dict__)  # the operator's own file
    return {name: value for name, value in vars(module).items() if name.isupper()}


def load_dev_secret_key(instance_path):
    """Return the development secret key kept in the instance folder, creating it once.

    The key is written to a private temporary file and linked into place, so two processes
    starting together agree on one key and neither reads a half-written file.
    """
    path = Path(instance_path) / SECRET_KEY_FILE
    if not path.exists():
        tmp = path.with_name(f".{SECRET_KEY_FILE}.{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32) + "\n")
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
    return path.read_text().strip()


# A secret key of at least this many characters, with some variety: 32 random bytes' worth
# once hex-encoded is 64 characters; this refuses the obviously guessable, not the merely short.
SECRET_KEY_MIN_CHARS = 32
SECRET_KEY_HOW = ("`python -c 'import secrets; print(secrets.token_hex(32))'` (32 random bytes, "
                  "64 characters)")


def resolve_secret_key(config, instance_path):
    if config.get("SECRET_KEY"):
        key = config["SECRET_KEY"]
        if config.get("ENV") == "production" and (
                len(key) < SECRET_KEY_MIN_CHARS or len(set(key)) < 10):
            raise ConfigurationError(
                f"SENDAUTH_SECRET_KEY is too short or too simple to be secret ({len(key)} "
                f"characters): in production it must be at least {SECRET_KEY_MIN_CHARS} random "
                f"characters. Make one with {SECRET_KEY_HOW}, and keep it the same across "
                "restarts and processes (changing it signs everyone out and, without "
                "SENDAUTH_ENCRYPTION_KEY, makes stored secrets unreadable).")
        return key
    if config.get("ENV") == "production":
        raise ConfigurationError(
            "SENDAUTH_SECRET_KEY is not set. In production the dashboard will not start without "
            "it: "
            "set it to a long random value, for example the output of "
            "`python -c 'import secrets; print(secrets.token_hex(32))'`, and keep it the same "
            "across restarts and processes."
        )
    return load_dev_secret_key(instance_path)


def derive(config, instance_path):
    """Fill in what follows from the layers: the secret key, the database, cookie security,
    the rate limiter's storage. ConfigurationError says what to set when something is wrong."""
    config["SECRET_KEY"] = resolve_secret_key(config, instance_path)
    if not config["SQLALCHEMY_DATABASE_URI"]:
        config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{Path(instance_path) / 'sendauth.db'}"
    if config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        options = dict(config["SQLALCHEMY_ENGINE_OPTIONS"])
        options["connect_args"] = {"timeout": float(config["SQLITE_BUSY_TIMEOUT_SECONDS"]),
                                   **options.get("connect_args", {})}
        config["SQLALCHEMY_ENGINE_OPTIONS"] = options
    if config["SESSION_COOKIE_SECURE"] is None:
        config["SESSION_COOKIE_SECURE"] = config["BASE_URL"].startswith("https://")
    config["BASE_URL"] = config["BASE_URL"].rstrip("/")
    config["RATELIMIT_STORAGE_URI"] = (
        config["RATELIMIT_STORAGE_URI"] or config["REDIS_URL"] or "memory://")
    config["DISPATCHER"] = config["DISPATCHER"] or "thread"
