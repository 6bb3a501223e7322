"""The home page (what to do next, by role) and the health check."""
from flask import Blueprint, current_app, jsonify, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import func, select, text
from sqlalchemy.exc import SQLAlchemyError

from . import channels
from .channels import integration
from .errors import database_busy
from .extensions import db
from .models import Transaction, User

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
    pagerduty = channels.channel("pagerduty")
    settings = pagerduty.settings_row()
    user_count = db.session.scalar(select(func.count(User.id)))
    return [
        {
            "label": "Set up PagerDuty: paste the integration key and enable it",
            "done": bool(settings.enabled and settings.integration_key_ciphertext),
            "url": url_for("settings.channel", name="pagerduty"),
        },
        {
            "label": "Send a test incident to check that PagerDuty accepts it",
            "done": integration.has_been_invoked("pagerduty"),
            "url": url_for("settings.channel", name="pagerduty"),
        },
        {
            "label": "Add the people who send and answer authentication requests",
            "done": user_count > 1,
            "url": url_for("settings.users"),
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


# (label, endpoint, its URL's arguments): the item is marked current on every page of its
# endpoint, so "Channels" is current on each channel's settings page.
NAVIGATION = (
    ("Home", "main.home", {}),
    ("Transactions", "transactions.index", {}),
    ("Send a request", "transactions.new", {}),
    ("Messaging", "profile.messaging", {}),
    ("Passkeys", "profile.passkeys", {}),
    ("Password", "profile.password", {}),
    ("Channels", "settings.channel", {"name": channels.names()[0]}),
    ("Users", "settings.users", {}),
    ("Organisation", "settings.organisation", {}),
)
# Pages that belong to another item's section.
SECTIONS = {"transactions.show": "transactions.index"}


def navigation():
    """The navigation for the signed-in user: only what their role may open.

    Each view's ``role_required`` decorator records its minimum role, so the menu and the
    access check cannot disagree.
    """
    if not current_user.is_authenticated:
        return {"nav_items": ()}
    here = SECTIONS.get(request.endpoint, request.endpoint)
    items = []
    for label, endpoint, arguments in NAVIGATION:
        minimum = getattr(current_app.view_functions[endpoint], "minimum_role", "member")
        if current_user.has_role(minimum):
            items.append((label, url_for(endpoint, **arguments), here == endpoint))
    return {"nav_items": items}
