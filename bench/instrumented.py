"""The dashboard exactly as `make serve` runs it (`wsgi:app`), plus one header that only the
benchmarks read: ``X-Bench-Committed-At``, the CLOCK_MONOTONIC time right after the request's
database transaction committed, before anything is published or woken. Serve it with
``gunicorn -c gunicorn.conf.py bench.instrumented:app``."""
import time

from flask import g, has_request_context
from sqlalchemy import event
from sqlalchemy.orm import Session

import wsgi  # noqa: I001 (first: under gunicorn it patches with gevent before anything else)

COMMITTED_AT = "X-Bench-Committed-At"

app = wsgi.app


# insert=True: runs before the listener that publishes the committed events.
@event.listens_for(Session, "after_commit", insert=True)
def _stamp_commit(session):
    if has_request_context():
        g.bench_committed_at = time.monotonic()


@app.after_request
def _send_commit_time(response):
    committed_at = g.get("bench_committed_at")
    if committed_at is not None:
        response.headers[COMMITTED_AT] = repr(committed_at)
    return response
