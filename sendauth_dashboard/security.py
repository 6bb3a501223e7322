"""Response headers every page gets, and a log filter that keeps answer tokens out of logs."""
import logging
import re

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

# /authenticate/<token>, also URL-encoded inside a ?next= parameter.
_TOKEN_IN_PATH = re.compile(r"(authenticate(?:/|%2F))[A-Za-z0-9_\-]+", re.IGNORECASE)


def redact_tokens(text):
    return _TOKEN_IN_PATH.sub(r"\1[token]", text)


class RedactTokens(logging.Filter):
    """Replaces answer tokens in request lines (Werkzeug's and gunicorn's access logs)."""

    def filter(self, record):
        if isinstance(record.msg, str):
            record.msg = redact_tokens(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact_tokens(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: redact_tokens(v) if isinstance(v, str) else v
                           for k, v in record.args.items()}
        return True


REQUEST_LOGGERS = ("werkzeug", "gunicorn.access", "gunicorn.error")


def install_log_filter():
    for name in REQUEST_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactTokens) for f in logger.filters):
            logger.addFilter(RedactTokens())


def add_security_headers(response):
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "same-origin")
    return response


def register(app):
    install_log_filter()
    app.after_request(add_security_headers)
