"""The entry point for `flask --app wsgi` and for gunicorn (`wsgi:app`)."""
import os

if os.environ.get("SENDAUTH_GEVENT") == "1":
    # Under gunicorn's gevent worker: patch before the database driver, requests or redis
    # are imported, so their sockets cooperate (psycopg then waits through gevent too).
    from gevent import monkey

    monkey.patch_all()

    from sendauth_dashboard import precedence

    precedence.install()  # while streams open, a query's short wait keeps the loop

from sendauth_dashboard import create_app, serve  # noqa: E402

app = create_app()
serve(app)
