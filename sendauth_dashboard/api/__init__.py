"""The JSON API (/api/v1) for the help desk's own tools: thin views over the services the
pages use, declared once in ``spec`` (checks and the OpenAPI document), errors as problem
documents, ``Authorization: Bearer`` API keys only."""
from flask import Blueprint

bp = Blueprint("api", __name__, url_prefix="/api")

# The views register themselves.
from . import (  # noqa: E402,F401
    auth,
    docs,
    routing_rules,
    transactions,
    users,
    webhooks,
)

bp.after_request(auth.add_headers)


def register(app):
    """The API takes no form and no session: no CSRF token to check."""
    from ..extensions import csrf

    csrf.exempt(bp)
    app.register_blueprint(bp)
