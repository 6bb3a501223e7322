"""The home page (what to do next, by role) and the health check."""
import ipaddress
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    current_app,
    jsonify,
    render_template,
    request,
    send_from_directory,
    url_for,
)
from flask_login import current_user, login_required
from sqlalchemy import func, select, text
from sqlalchemy.exc import SQLAlchemyError

from .. import channels
from ..channels import integration
from ..core import event_log
from ..errors import database_busy
from ..extensions import db
from ..models import Transaction, User
from ..services.people import passkeys
from ..services.reports import health, organisation
from ..services.requests import routing
from ..services.webhooks import endpoints
from .auth import role_required
from .settings import SIDEBAR

bp = Blueprint("main", __name__)

RECENT_TRANSACTIONS = 5


@bp.route("/")
@login_required
def home():
    context = {"own_reach": own_reach()}
    if current_user.has_role("admin"):
        context["checklist"] = admin_checklist()
    if current_user.has_role("reviewer"):
        # Read the latest event id first, so the live stream replays anything newer.
        context["last_event_id"] = event_log.latest_event_id()
        context["now"] = health.right_now()
    if current_user.has_role("requestor"):
        context["recent"] = db.session.scalars(
            select(Transaction)
            .where(Transaction.requestor_id == current_user.id)
            .order_by(Transaction.id.desc())
            .limit(RECENT_TRANSACTIONS)
        ).all()
    return render_template("home.html", **context)


@bp.get("/right-now")
@role_required("reviewer")
def right_now():
    """The home page's "right now" section alone: the page fetches it again as events arrive."""
    return render_template("_right_now.html", now=health.right_now())


def own_reach():
    """What the signed-in person is told when they are expected to answer requests and
    nobody can send them one: {"missing": "channel" or "passkey", "offered": the labels of
    the channels the organisation has set up}; None when they can be sent one."""
    user = db.session.get(User, current_user.id)
    if not health.expected_to_answer([user]):
        return None
    reach = health.reach_of([user])[user.id]
    if reach.reachable:
        return None
    offered = [channels.label(name) for name, problem in routing.organisation_problems().items()
               if problem is None]
    return {"missing": "channel" if not reach.channels else "passkey", "offered": offered}


def admin_checklist():
    """A new admin's first steps, each ticked off once done."""
    pagerduty = channels.channel("pagerduty")
    settings = pagerduty.settings_row()
    user_count = db.session.scalar(select(func.count(User.id)))
    in_error, retrying = health.channel_troubles()
    steps = [
        {
            "label": "Register your own passkey: it signs you in, and proves it is you",
            "done": passkeys.has_passkey(current_user),
            "url": url_for("profile.passkeys"),
        },
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
        {
            "label": "Keep every channel that is on working: none may be in error",
            "done": not in_error,
            "url": url_for("settings.channels"),
            # Late, not failing: said in amber beside the step, which stays done.
            "retrying": ", ".join(channels.label(c) for c in retrying),
        },
    ]
    if organisation.requires_passkey():
        steps.insert(4, {
            "label": "Have the people who answer requests register a passkey: the "
                     "organisation requires one to verify",
            "done": not health.nobody_reachable_has_a_passkey(),
            "url": url_for("settings.users"),
        })
    return steps


LOCAL_NAMES = ("localhost", "127.0.0.1", "::1")


def address_warning():
    """{"wrong_address": the same page at SENDAUTH_BASE_URL} when this page was opened at
    another host, where passkeys fail (WebAuthn accepts only the base URL's host and origin):
    127.0.0.1 for localhost, or an IP address for the name. A proxy that passes another Host
    header, or a second name of the server, is not taken for a mistake: only a local name for
    another local name, or an IP address for a name."""
    base = urlsplit(current_app.config["BASE_URL"])
    opened = urlsplit(f"{request.scheme}://{request.host}")
    here, wanted = (opened.hostname or "").lower(), (base.hostname or "").lower()
    if not here or not wanted:
        return {}
    if _local(here) and _local(wanted):
        # Locally, the port counts too: the origin is scheme, host and port.
        if (here, _port(opened)) == (wanted, _port(base)):
            return {}
    elif here == wanted or not (_ip_address(here) and not _ip_address(wanted)):
        return {}
    page = request.full_path if request.query_string else request.path
    return {"wrong_address": {"here": opened.netloc, "host": base.netloc,
                              "url": f"{base.scheme}://{base.netloc}{page}"}}


def _port(address):
    return address.port or (443 if address.scheme == "https" else 80)


def _local(host):
    return host in LOCAL_NAMES or host.endswith(".localhost")


def _ip_address(host):
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


# How long /healthz waits for a lock before it says the database is busy: a probe that hangs
# for the busy timeout (5 s) tells a load balancer nothing it can act on in time.
HEALTH_LOCK_WAIT_MS = 500


@bp.route("/healthz")
def healthz():
    """200 when the database would take a write now; 503 when it is down, or busy (a lock not
    free within HEALTH_LOCK_WAIT_MS): an answer within a second either way."""
    try:
        connection = db.session.connection()
        if connection.dialect.name == "sqlite":
            # Readers go on while another connection holds the write lock (WAL): only taking
            # the lock shows it. Nothing is written; the connection's own wait comes back.
            connection.exec_driver_sql(f"PRAGMA busy_timeout = {HEALTH_LOCK_WAIT_MS}")
            try:
                connection.exec_driver_sql("BEGIN IMMEDIATE")
            finally:
                wait = int(current_app.config["SQLITE_BUSY_TIMEOUT_SECONDS"] * 1000)
                connection.exec_driver_sql(f"PRAGMA busy_timeout = {wait}")
        else:
            connection.execute(text(f"SET LOCAL statement_timeout = {HEALTH_LOCK_WAIT_MS}"))
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        db.session.rollback()
        state = "busy" if database_busy(exc) else "not answering"
        return jsonify(status="unavailable", database=state), 503
    db.session.rollback()
    return jsonify(status="ok", database="ok")


@bp.get("/favicon.ico")
def favicon():
    """The icon a browser asks for by itself (every page also links static/favicon.svg): the
    same SVG, so no page load logs a 404."""
    return send_from_directory(current_app.static_folder, "favicon.svg",
                               mimetype="image/svg+xml", max_age=86400)


# The bar at the top: the work. Settings is one item there, opening the settings sidebar
# (``settings.SIDEBAR``); a person's own pages are under their name.
WORK = (
    ("Home", "main.home"),
    ("Transactions", "transactions.index"),
    ("Send a request", "transactions.new"),
    ("Insights", "insights.index"),
)
PERSONAL = (
    ("Messaging", "profile.messaging"),
    ("Passkeys", "profile.passkeys"),
    ("Password", "profile.password"),
    ("API keys", "profile.api_keys_page"),
)
# Pages that belong to another item's section.
SECTIONS = {"transactions.show": "transactions.index", "settings.channel": "settings.channels",
            "settings.webhook": "settings.webhooks"}


def navigation():
    """The navigation for the signed-in user: only what their role may open.

    Each view's ``role_required`` decorator records its minimum role, so the menu and the
    access check cannot disagree. Items are (label, url, current, alert).
    """
    if not current_user.is_authenticated:
        return {"nav_work": (), "nav_personal": (), "nav_settings": ()}
    here = SECTIONS.get(request.endpoint, request.endpoint)
    alerts = _nav_alerts()

    def items(entries):
        return [(label, url_for(endpoint), here == endpoint, alerts.get(endpoint))
                for label, endpoint in entries if _may_open(endpoint)]

    sidebar = [(section, items(entries)) for section, entries in settings_sections()]
    sidebar = [(section, entries) for section, entries in sidebar if entries]
    work = items(WORK)
    if sidebar:
        opened = [item for _, entries in sidebar for item in entries]
        marks = [item[3] for item in opened if item[3]]
        settings_alert = Alert("; ".join(marks), "bad" if any(
            m.level == "bad" for m in marks) else "warn") if marks else None
        work.append(("Settings", opened[0][1], request.blueprint == "settings",
                     settings_alert))
    return {"nav_work": work, "nav_personal": items(PERSONAL),
            "nav_settings": sidebar if request.blueprint == "settings" else ()}


def settings_sections():
    """``settings.SIDEBAR`` as (section, [(label, endpoint)]), in its order."""
    sections = {}
    for section, label, endpoint in SIDEBAR:
        sections.setdefault(section, []).append((label, endpoint))
    return sections.items()


def _may_open(endpoint):
    minimum = getattr(current_app.view_functions[endpoint], "minimum_role", "member")
    return current_user.has_role(minimum)


class Alert(str):
    """A menu mark's words, and how bad: "bad" (red: failing) or "warn" (amber: late, being
    retried)."""

    level = "bad"

    def __new__(cls, words, level="bad"):
        alert = super().__new__(cls, words)
        alert.level = level
        return alert


def _nav_alerts():
    """A mark beside a menu item that needs an admin now: {endpoint: Alert}."""
    if not current_user.has_role("admin"):
        return {}
    try:
        in_error, retrying = health.channel_troubles()
        hooks = endpoints.failing()
    except SQLAlchemyError:
        return {}  # an error page whose cause was the database still renders, unmarked
    alerts = {}
    words = []
    if in_error:
        words.append(", ".join(channels.label(c) for c in in_error) + ": the last send failed")
    if retrying:
        words.append(", ".join(channels.label(c) for c in retrying)
                     + ": the last send is being retried")
    if words:
        alerts["settings.channels"] = Alert("; ".join(words), "bad" if in_error else "warn")
    if hooks:
        alerts["settings.webhooks"] = Alert(f"{len(hooks)} failing or turned off")
    return alerts
