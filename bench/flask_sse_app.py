"""The usual choice for SSE in Flask, `flask-sse` (PyPI), as a minimal app for the fan-out
comparison: its blueprint as documented, on the same Redis as the dashboard, served the same way
(`gunicorn -c gunicorn.conf.py bench.flask_sse_app:app`: gevent, one worker). Watchers sign in
once (a signed session cookie) and the stream answers 401 without it, as the dashboard's does.

flask-sse subscribes to Redis once per open stream: every watcher holds its own Redis
connection and its own pub/sub subscription.
"""
import os

if os.environ.get("SENDAUTH_GEVENT") == "1":  # set by gunicorn.conf.py, as for wsgi.py
    from gevent import monkey

    monkey.patch_all()

from flask import Flask, abort, jsonify, session  # noqa: E402
from flask_sse import sse  # noqa: E402

app = Flask(__name__)
app.config["REDIS_URL"] = os.environ["SENDAUTH_REDIS_URL"]
app.config["SECRET_KEY"] = os.environ["SENDAUTH_SECRET_KEY"]


@sse.before_request
def signed_in_only():
    if "user" not in session:
        abort(401)


app.register_blueprint(sse, url_prefix="/stream")


@app.post("/login")
def login():
    session["user"] = "reviewer"
    return "", 204


@app.get("/healthz")
def healthz():
    return jsonify(status="ok")
