"""``GET /transactions/stream``: server-sent events for the pages that watch transactions."""
import re

from flask import Response, abort, current_app, request
from flask.sessions import SecureCookieSessionInterface
from itsdangerous import BadSignature
from werkzeug.datastructures import Headers
from werkzeug.http import parse_cookie
from werkzeug.wsgi import ClosingIterator

from ... import precedence
from ...core.ids import MAX_EVENT_ID, row_id
from ...runtime import runtime
from ...security import security_headers, served_securely
from ...services.live import conduit, rights, slots
from ...services.live import stream as live
from ..auth import signed_in_as
from . import bp

PATH = "/transactions/stream"
MIMETYPE = "text/event-stream"
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


@bp.get("/stream")
def stream():
    """Replays events after ``Last-Event-ID`` (a reconnecting browser) or ``?after=`` (a page
    that has just rendered), then sends new ones live. 401, not a redirect, when signed out.
    It ends within a heartbeat of its signed-in session ending (signed out, the password
    changed, expired): services.live.rights.

    Opening one costs no query of its own: the session is checked against the person's shared
    reading of their rights, and what the browser missed comes from the process's recent
    events (services.live.recent), since after a restart every browser comes back at once.
    A stream that may open is answered before it gets here (``StreamOpenings``); this view
    answers the others, and wherever that middleware is not in front (it always is in
    create_app)."""
    signed_in = signed_in_as()
    if signed_in is None:
        abort(401)
    after = _after(request.headers.get("Last-Event-ID"), request.args.get("after"))
    try:
        body, release = _opened(current_app._get_current_object(), request.environ, signed_in,
                                after)
    except rights.Refused as refused:
        abort(refused.status)
    except slots.StreamsFull as exc:
        return Response(f"{exc}\n", status=429, mimetype="text/plain",
                        headers={"Retry-After": "60", "Cache-Control": "no-store"})
    response = _StreamResponse(body, mimetype=MIMETYPE, headers=HEADERS)
    # Also when the server is done with the response, in case the body never started.
    response.call_on_close(release)
    return response


stream.minimum_role = "requestor"


def _opened(app, environ, signed_in, after):
    """(the stream's body, the release of its slot) for a signed-in session; rights.Refused
    or slots.StreamsFull when it may not open."""
    viewer = rights.watcher(rights.rights_of(app), *signed_in)
    writer = conduit.conduit_for(environ, viewer)
    config = app.config
    release = slots.slots_of(app).open(viewer.user_id, per_user=config["STREAMS_PER_USER"],
                                       per_process=config["STREAMS_PER_PROCESS"],
                                       gone=writer.gone if writer is not None else None)
    body = _releasing(app, release, live.stream(
        viewer, after, runtime(app).broker,
        heartbeat=config["SSE_HEARTBEAT_SECONDS"],
        lifetime=live.lifetime(config["SSE_MAX_SECONDS"]),
        conduit=writer,
    ))
    return body, release


class _StreamResponse(Response):
    """Forgets its headers once they are sent: thousands of streams stay open, and each kept
    its own copy (the session's cookie among them) for nothing."""

    def __call__(self, environ, start_response):
        body = super().__call__(environ, start_response)
        self.headers = Headers()
        return body


def _releasing(app, release, body):
    """``body`` in an app context (for its database reads), giving its stream's slot back as
    soon as it ends.

    Not ``stream_with_context``: keeping the request's context for the stream's life kept its
    request, session and signed-in user in memory for every watcher (bench/fanout.py); the
    stream needs none of them once the viewer is captured."""
    try:
        with app.app_context():
            yield from body
    finally:
        release()


def _after(last_event_id, after):
    """Where the stream resumes: the browser's ``Last-Event-ID``, else ``?after=``."""
    return _event_id(last_event_id) or _event_id(after)


def _event_id(value):
    try:
        return row_id(value, MAX_EVENT_ID)
    except (TypeError, ValueError):
        return 0


# The query strings a page's stream is opened with: none, or ?after=<id>.
_PLAIN_QUERY = re.compile(r"(?:after=[0-9]{1,19})?")


class StreamOpenings:
    """WSGI middleware: a stream that may open is answered here, before Flask's request
    machinery; every other request, and a stream that may not open (signed out, refused,
    too many), goes on to the app, whose view gives the refusal as it always has.

    After a restart every browser opens its stream again at once (issue 26). Of the ~1 ms of
    the worker's CPU each opening cost, Flask's side was ~0.6 ms and the view's own work a
    tenth of that (bench/storm.py, py-spy): the request context, the URL's match, the rate
    limiter's and the CSRF guard's checks (neither applies to this GET), the session's
    saving and the response's finalisation. Here the opening does only what decides it: the
    session cookie read with the app's own serializer (as Flask reads it), the person's
    shared rights, a slot; the response carries the headers every page gets
    (``security_headers``) and the stream's own. A session cookie this does not read as
    Flask would (another session interface) leaves every stream to the app.
    """

    def __init__(self, app, wsgi_app):
        self.app = app
        self.wsgi_app = wsgi_app
        self._serializer = (None, None)  # (the secret key it was made for, the serializer)

    def __call__(self, environ, start_response):
        if (environ.get("PATH_INFO") != PATH or environ.get("REQUEST_METHOD") != "GET"
                or not _PLAIN_QUERY.fullmatch(environ.get("QUERY_STRING", ""))):
            return self.wsgi_app(environ, start_response)
        with precedence.openings.turn():
            opened = self._open(environ)
        if opened is None:
            return self.wsgi_app(environ, start_response)
        body, release = opened
        headers = [("Content-Type", f"{MIMETYPE}; charset=utf-8"), *HEADERS.items(),
                   *security_headers(served_securely(environ, self.app.config))]
        start_response("200 OK", headers)
        return ClosingIterator((frame.encode() for frame in body), [body.close, release])

    def _open(self, environ):
        """_opened, or None when the session names no one or the stream may not open."""
        signed_in = self._signed_in(environ)
        if signed_in is None:
            return None
        query = environ.get("QUERY_STRING", "")
        after = _after(environ.get("HTTP_LAST_EVENT_ID"), query.partition("=")[2] or None)
        try:  # no app context: the rights' reading pushes one if it reads the database
            return _opened(self.app, environ, signed_in, after)
        except (rights.Refused, slots.StreamsFull):
            return None

    def _signed_in(self, environ):
        """``signed_in_as`` of the request's session cookie, read as Flask's
        SecureCookieSessionInterface reads it; None when it names no one or is not valid
        (the app then answers, as before)."""
        app = self.app
        interface = app.session_interface
        if type(interface) is not SecureCookieSessionInterface:
            return None
        value = parse_cookie(environ).get(interface.get_cookie_name(app))
        if not value:
            return None
        serializer = self._serializer_for(interface)
        if serializer is None:
            return None
        try:
            cookie = serializer.loads(
                value, max_age=int(app.permanent_session_lifetime.total_seconds()))
        except BadSignature:
            return None
        return signed_in_as(cookie) if isinstance(cookie, dict) else None

    def _serializer_for(self, interface):
        key = (self.app.secret_key, tuple(self.app.config.get("SECRET_KEY_FALLBACKS") or ()))
        made_for, serializer = self._serializer
        if made_for != key:
            serializer = interface.get_signing_serializer(self.app)
            self._serializer = (key, serializer)
        return serializer
