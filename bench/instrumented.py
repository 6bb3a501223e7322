"""The dashboard exactly as `make serve` runs it (`wsgi:app`), plus what only the benchmarks read:
a header ``X-Bench-Committed-At``, the CLOCK_MONOTONIC time right after the request's database
transaction committed, before anything is published or woken; a header ``X-Bench-Events``, the
events the request wrote (``id:kind``, comma-separated), so a benchmark knows which event a send
made without asking the database; and ``GET /_bench/memory``, where the worker's memory is.
Serve it with ``gunicorn -c gunicorn.conf.py bench.instrumented:app``, never in production (the
memory page has no sign-in)."""
import time

from flask import g, has_request_context
from sqlalchemy import event
from sqlalchemy.orm import Session

import wsgi  # noqa: I001 (first: under gunicorn it patches with gevent before anything else)
from sendauth_dashboard.models import Event

from .headers import COMMITTED_AT, EVENTS

app = wsgi.app


# insert=True: runs before the listener that publishes the committed events.
@event.listens_for(Session, "after_commit", insert=True)
def _stamp_commit(session):
    if has_request_context():
        g.bench_committed_at = time.monotonic()


# Flushed Event rows have their ids and are still in session.new (rolled back ones are listed
# too: a benchmark waits for the event it names, and a send that failed answers no redirect).
@event.listens_for(Session, "after_flush")
def _note_events(session, flush_context):
    if has_request_context():
        written = [f"{obj.id}:{obj.kind}" for obj in session.new if isinstance(obj, Event)]
        if written:
            g.setdefault("bench_events", []).extend(written)


@app.after_request
def _send_commit_time(response):
    committed_at = g.get("bench_committed_at")
    if committed_at is not None:
        response.headers[COMMITTED_AT] = repr(committed_at)
    if g.get("bench_events"):
        response.headers[EVENTS] = ",".join(g.bench_events)
    return response


@app.get("/_bench/memory")
def _memory():
    """Where the worker's memory is, for the fan-out benchmark's --memory-detail: the greenlets
    and the C stacks they keep while switched out, and, when the worker runs with
    PYTHONTRACEMALLOC set, the live allocations by the line that made them."""
    import gc
    import tracemalloc

    import greenlet

    greenlets = [o for o in gc.get_objects() if isinstance(o, greenlet.greenlet)]
    report = {
        "greenlets": len(greenlets),
        "greenlet_stacks_saved_kib": round(
            sum(getattr(g, "_stack_saved", 0) for g in greenlets) / 1024, 1),
    }
    if tracemalloc.is_tracing():
        snapshot = tracemalloc.take_snapshot()
        report["traced_kib"] = round(tracemalloc.get_traced_memory()[0] / 1024, 1)
        report["top_lines"] = [
            {"where": str(stat.traceback[0]), "kib": round(stat.size / 1024, 1),
             "blocks": stat.count}
            for stat in snapshot.statistics("lineno")[:30]]
    return report
