"""``GET /transactions/stream``: server-sent events for the pages that watch transactions."""
from flask import Response, abort, current_app, request
from werkzeug.datastructures import Headers

from ...core.ids import MAX_EVENT_ID, row_id
from ...runtime import runtime
from ...services.live import conduit, rights, slots
from ...services.live import stream as live
from ..auth import signed_in_as
from . import bp


@bp.get("/stream")
def stream():
    """Replays events after ``Last-Event-ID`` (a reconnecting browser) or ``?after=`` (a page
    that has just rendered), then sends new ones live. 401, not a redirect, when signed out.
    It ends within a heartbeat of its signed-in session ending (signed out, the password
    changed, expired): services.live.rights.

    Opening one costs no query of its own: the session is checked against the person's shared
    reading of their rights, and what the browser missed comes from the process's recent
    events (services.live.recent), since after a restart every browser comes back at once."""
    signed_in = signed_in_as()
    if signed_in is None:
        abort(401)
    try:
        viewer = rights.watcher(rights.rights_of(), *signed_in)
    except rights.Refused as refused:
        abort(refused.status)
    after = _event_id(request.headers.get("Last-Event-ID")) or _event_id(request.args.get("after"))
    writer = conduit.conduit_for(request.environ, viewer)
    config = current_app.config
    try:
        release = slots.slots_of().open(viewer.user_id, per_user=config["STREAMS_PER_USER"],
                                        per_process=config["STREAMS_PER_PROCESS"],
                                        gone=writer.gone if writer is not None else None)
    except slots.StreamsFull as exc:
        return Response(f"{exc}\n", status=429, mimetype="text/plain",
                        headers={"Retry-After": "60", "Cache-Control": "no-store"})
    body = _releasing(current_app._get_current_object(), release, live.stream(
        viewer, after, runtime().broker,
        heartbeat=config["SSE_HEARTBEAT_SECONDS"],
        lifetime=live.lifetime(config["SSE_MAX_SECONDS"]),
        conduit=writer,
    ))
    response = _StreamResponse(body, mimetype="text/event-stream", headers={
        "Cache-Control": "no-cache", "X-Accel-Buffering": "no",
    })
    # Also when the server is done with the response, in case the body never started.
    response.call_on_close(release)
    return response


stream.minimum_role = "requestor"


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


def _event_id(value):
    try:
        return row_id(value, MAX_EVENT_ID)
    except (TypeError, ValueError):
        return 0
