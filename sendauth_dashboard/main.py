"""The home page (what to do next, by role) and the health check."""
from flask import Blueprint, current_app, jsonify, render_template, request
from flask_login import current_user, login_required
from sqlalchemy import func, select, text
from sqlalchemy.exc import SQLAlchemyError

from .errors import database_busy
from .extensions import db
from .models import Transaction, User
from .services import integrations

bp = Blueprint("main", __name__)

RECENT_TRANSACTIONS = 5


@bp.route("/")
@login_required
def home():
    context = {}
    if current_user.has_role("admin"):
        context["checklist"] = admin_checklist()
    if current_user.has_role("requestor"):
        context["recent"] = db.session.scalars(
            select(Transaction)
            .where(Transaction.requestor_id == current_user.id)
            .order_by(Transaction.id.desc())
            .limit(RECENT_TRANSACTIONS)
        ).all()
    return render_template("home.html", **context)


def admin_checklist():
    """A new admin's first steps, each ticked off once done."""
    settings = integrations.pagerduty_settings()
    user_count = db.session.scalar(select(func.count(User.id)))
    return [
        {
            "label": "Set up PagerDuty: paste the integration key and enable it",
            "done": bool(settings.enabled and settings.integration_key_ciphertext),
            "endpoint": "settings.pagerduty",
        },
        {
            "label": "Send a test incident to check that PagerDuty accepts it",
            "done": integrations.has_been_invoked("pagerduty"),
            "endpoint": "settings.pagerduty",
        },
        {
            "label": "Add the people who send and answer authentication requests",
            "done": user_count > 1,
            "endpoint": "settings.users",
        },
    ]


@bp.route("/healthz")
def healthz():
    """200 when the database would take a write now; 503 when it is down or locked."""
    try:
        connection = db.session.connection()
        if connection.dialect.name == "sqlite":
            # Readers go on while another connection holds the write lock (WAL): only taking
            # the lock shows it, within the busy timeout. Nothing is written.
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        db.session.rollback()
        state = "busy" if database_busy(exc) else "not answering"
        return jsonify(status="unavailable", database=state), 503
    db.session.rollback()
    return jsonify(status="ok", database="ok")


# (label, endpoint, the other pages of its section: the item is marked current on them too)
NAVIGATION = (
    ("Home", "main.home", ()),
    ("Transactions", "transactions.index", ("transactions.show",)),
    ("Send a request", "transactions.new", ()),
    ("Messaging", "profile.messaging", ()),
    ("Passkeys", "profile.passkeys", ()),
    ("Channels", "settings.pagerduty", ("settings.email", "settings.sms", "settings.slack")),
    ("Users", "settings.users", ()),
    ("Organisation", "settings.organisation", ()),
)


def navigation():
    """The navigation for the signed-in user: only what their role may open.

    Each view's ``role_required`` decorator records its minimum role, so the menu and the
    access check cannot disagree.
    """
    if not current_user.is_authenticated:
        return {"nav_items": (), "nav_groups": ()}
    items = []
    for label, endpoint, section in NAVIGATION:
        minimum = getattr(current_app.view_functions[endpoint], "minimum_role", "member")
        if current_user.has_role(minimum):
            current = request.endpoint == endpoint or request.endpoint in section
            items.append((label, endpoint, current))
    return {"nav_items": items, "nav_groups": nav_groups(items)}


ADMIN_GROUP = "Admin settings"


def nav_groups(items):
    """A person's own pages first, then the admin settings (the ``settings.`` pages) under a
    label of their own; a group without items is left out."""
    own = [item for item in items if not item[1].startswith("settings.")]
    admin = [item for item in items if item[1].startswith("settings.")]
    return [(group, entries) for group, entries in (("", own), (ADMIN_GROUP, admin)) if entries]
