"""The entry point for `flask --app wsgi` and for gunicorn (`wsgi:app`)."""
from sendauth_dashboard import create_app

app = create_app()
