"""Response headers every page gets, a log filter that keeps answer tokens out of logs, a
size limit that holds for request bodies sent without a length, and no NUL characters in."""
import functools
import io
import logging
import re

from flask import current_app, request
from werkzeug.exceptions import BadRequest

from .core.tokens import redact_tokens

CONTENT_SECURITY_POLICY = "; ".join((
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "form-action 'self'",
    "base-uri 'none'",
    "object-src 'none'",
    "frame-ancestors 'none'",
))

class RedactTokens(logging.Filter):
    """Replaces answer tokens in request lines: Werkzeug's and gunicorn's access logs, and
    Flask's "Exception on /authenticate/... [POST]" when a request fails."""

    def filter(self, record):
        if isinstance(record.msg, str):
            record.msg = redact_tokens(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact_tokens(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            # Only what the message prints: gunicorn's access log hands over every request
            # header, response header and environ value (~60), and redacting them all was
            # most of the cost of logging a request.
            names = (_printed(record.msg) if isinstance(record.msg, str)
                     else tuple(record.args))
            for name in names:
                value = record.args.get(name)
                if isinstance(value, str):
                    record.args[name] = redact_tokens(value)
        return True


_PRINTED = re.compile(r"%\(([^)]*)\)")


@functools.lru_cache(maxsize=64)
def _printed(message):
    """The names a %-style ``message`` prints from a mapping, as the mapping holds them (a
    gunicorn header or environ atom, ``{name}i``, in lower case: its SafeAtoms looks it up
    so)."""
    return tuple({name.lower() if name.startswith("{") else name
                  for name in _PRINTED.findall(message)})


REQUEST_LOGGERS = ("werkzeug", "gunicorn.access", "gunicorn.error", "sendauth_dashboard")


def install_log_filter():
    for name in REQUEST_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactTokens) for f in logger.filters):
            logger.addFilter(RedactTokens())


STRICT_TRANSPORT_SECURITY = "max-age=31536000"


def security_headers(secure):
    """The headers every response gets, as (name, value) pairs; ``secure``: served over HTTPS
    (or the base URL is), when browsers heed Strict-Transport-Security."""
    headers = [
        ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
        ("X-Content-Type-Options", "nosniff"),
        ("X-Frame-Options", "DENY"),
        ("Referrer-Policy", "same-origin"),
    ]
    if secure:
        # Browsers heed it only over HTTPS; then they never try plain HTTP for a year.
        headers.append(("Strict-Transport-Security", STRICT_TRANSPORT_SECURITY))
    return headers


def served_securely(environ, config):
    return (environ.get("wsgi.url_scheme") == "https"
            or config["BASE_URL"].startswith("https://"))


def add_security_headers(response):
    headers = response.headers
    for name, value in security_headers(served_securely(request.environ, current_app.config)):
        headers.setdefault(name, value)
    return response


class BoundedStreamedBodies:
    """WSGI middleware: a body sent in chunks (no Content-Length) is read up to one byte past
    MAX_CONTENT_LENGTH and handed on with its length, so an over-long one gets the same 413.

    Without it Werkzeug reads such a body up to the limit and silently drops the rest, and the
    view acts on a cut-off form.
    """

    def __init__(self, app, wsgi_app):
        self.app = app
        self.wsgi_app = wsgi_app

    def __call__(self, environ, start_response):
        limit = self.app.config["MAX_CONTENT_LENGTH"]
        chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        if limit is not None and chunked and not environ.get("CONTENT_LENGTH"):
            body = _read_at_most(environ["wsgi.input"], limit + 1)
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
            environ.pop("HTTP_TRANSFER_ENCODING")
            environ.pop("wsgi.input_terminated", None)
        return self.wsgi_app(environ, start_response)


def _read_at_most(stream, size):
    parts = []
    while size > 0 and (part := stream.read(min(size, 64 * 1024))):
        parts.append(part)
        size -= len(part)
    return b"".join(parts)


class NulCharacter(BadRequest):
    advice = ("Something you sent contains a NUL character (U+0000), which no field accepts. "
              "Remove it and try again.")


def refuse_nul_characters():
    """No address, query or form value holds a NUL: none is meaningful, and PostgreSQL cannot
    even compare a text with one, so it would fail deep inside a query instead of here."""
    sent = [request.path]
    for values in (request.args, request.form):
        for name, value in values.items(multi=True):
            sent += (name, value)
    if any("\x00" in text for text in sent):
        raise NulCharacter()


def register(app):
    install_log_filter()
    app.before_request(refuse_nul_characters)
    app.after_request(add_security_headers)
    app.wsgi_app = BoundedStreamedBodies(app, app.wsgi_app)
