"""Error pages: each says what happened and what to do about it."""
import logging
import math
import time

from flask import g, render_template, request
from flask_limiter import RateLimitExceeded
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from werkzeug.exceptions import HTTPException, InternalServerError, ServiceUnavailable

from . import scim
from .api.problems import API_ADVICE, Problem, from_http_error, is_api_request, problem_response
from .extensions import db, limiter, login_manager
from .services.people import attempts

log = logging.getLogger(__name__)

ADVICE = {
    400: "The request was not understood. Go back, reload the page and try again.",
    401: "Sign in to continue.",
    403: "Your role does not allow this page. Ask an admin if you need access.",
    404: "There is nothing at this address. Check the link, or start again from the home page.",
    405: "This address does not accept that kind of request.",
    413: "What you sent is too large. Shorten it and try again.",
    429: "Too many attempts in a short time. Wait a minute, then try again.",
    500: "Something went wrong on our side. It has been logged; try again in a moment.",
    503: "The database is not answering right now. Nothing was saved; try again in a moment.",
}
DATABASE_BUSY = ("The database is busy right now: other work holds it. Nothing was saved; "
                 "try again in a moment.")
# What drivers say when a lock was not free in time (SQLite; PostgreSQL's lock_timeout).
_BUSY_WORDS = ("database is locked", "database table is locked", "lock timeout")


def database_busy(exc):
    """Busy rather than down: every pooled connection in use, or a lock held too long."""
    if isinstance(exc, PoolTimeoutError):
        return True
    return any(words in str(getattr(exc, "orig", "")).lower() for words in _BUSY_WORDS)


def render_error(code, title, message):
    """The error page; under /api/ a problem document (RFC 9457), never a page."""
    if is_api_request():
        return problem_response(code, message, title=title), code
    if scim.is_scim_request():
        return scim.error_answer(code, message)
    if request.accept_mimetypes.best == "application/json" or request.path.startswith("/healthz"):
        return {"error": title, "message": message}, code
    return render_template("errors/error.html", code=code, title=title, message=message), code


def handle_http_error(exc):
    if isinstance(exc, Problem):
        return exc.get_response()
    advice = getattr(exc, "advice", None) or ADVICE.get(exc.code, exc.description)
    if is_api_request():
        return from_http_error(exc, API_ADVICE.get(exc.code, advice))
    if scim.is_scim_request():
        return scim.error_answer(exc.code, advice)
    return render_error(exc.code, exc.name, advice)


def handle_csrf_error(exc):
    return render_error(
        400, "Form expired or not from this site",
        "The form's security token was missing or did not match your session. "
        "Reload the page and submit the form again.",
    )


def too_many(description, seconds):
    """429 with the wait in words and in Retry-After, so people and scripts both know when."""
    wait = f"{seconds} second{'s' if seconds != 1 else ''}"
    response, code = render_error(
        429, "Too many attempts",
        f"{description} Wait {wait}, then try again. Nothing you sent was used.")
    return response, code, {"Retry-After": str(seconds)}


def handle_rate_limited(exc):
    current = limiter.current_limit
    seconds = max(1, math.ceil(current.reset_at - time.time())) if current else 60
    return too_many(exc.description, seconds)


def handle_too_many_attempts(exc):
    """A password typed too often (services.people.attempts): counted before it was checked."""
    db.session.rollback()
    return too_many(str(exc), exc.seconds)


def handle_database_unavailable(exc):
    """503, never 500: the database is down, locked by other work, or every pooled
    connection is in use (SQLAlchemy's TimeoutError). The one database transaction of the
    request is rolled back, so nothing of it was written."""
    busy = database_busy(exc)
    cause = getattr(exc, "orig", None) or exc
    log.warning("database %s: %s", "busy" if busy else "unavailable", cause.__class__.__name__)
    db.session.rollback()
    # Who is signed in is in the database too: render the page for an anonymous visitor.
    g._login_user = login_manager.anonymous_user()
    if busy:
        return render_error(503, "Database busy", DATABASE_BUSY)
    return render_error(503, ServiceUnavailable().name, ADVICE[503])


def handle_unexpected(exc):
    """Flask has logged the original exception already; the person gets a page, not a trace."""
    return render_error(500, InternalServerError().name, ADVICE[500])


def register(app):
    app.register_error_handler(CSRFError, handle_csrf_error)
    app.register_error_handler(RateLimitExceeded, handle_rate_limited)
    app.register_error_handler(attempts.TooManyAttempts, handle_too_many_attempts)
    app.register_error_handler(HTTPException, handle_http_error)
    app.register_error_handler(OperationalError, handle_database_unavailable)
    app.register_error_handler(PoolTimeoutError, handle_database_unavailable)
    app.register_error_handler(InternalServerError, handle_unexpected)
