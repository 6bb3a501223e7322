"""The transaction list, the send form, a transaction's page, cancelling, and resolving its
PagerDuty incident."""
from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from ... import channels
from ...core import event_log
from ...core.ids import MAX_ROW_ID
from ...extensions import db
from ...models import TRANSACTION_STATES, User, utcnow
from ...services.approvals import group_requests, groups
from ...services.requests import (
    delivery_report,
    pagerduty_incidents,
    transaction_list,
    transactions,
)
from ..auth import role_required
from ..csv_export import csv_response
from ..forms import apply_service_error
from . import bp
from .forms import FilterForm, NewTransactionForm

USER_SUGGESTIONS = 500


def page_number(value):
    """A page number from the query string; anything else is the first page."""
    number = int(value) if value.isascii() and value.isdigit() and len(value) < 7 else 1
    return max(1, number)


@bp.route("/")
@role_required("requestor")
def index():
    form = FilterForm(request.args)
    status = form.status.data if form.status.data in TRANSACTION_STATES else ""
    days = {name: getattr(form, name).data if getattr(form, name).validate(form) else None
            for name in ("since", "until")}
    filters = transaction_list.Filters(
        q=(form.q.data or "")[:transaction_list.SEARCH_MAX_CHARS], status=status,
        user=(form.user.data or "")[:254],
        requestor=(form.requestor.data or "")[:254] if current_user.has_role("reviewer") else "",
        ticket=(form.ticket.data or "")[:128],
        **days,
    )
    if request.args.get("format") == "csv" and not form.errors:
        return csv_response("sendauth-transactions.csv",
                            transaction_list.export_rows(current_user, filters))
    # Read the latest event id before the rows, so the stream replays anything newer.
    last_event_id = event_log.latest_event_id()
    page = transaction_list.listing(current_user, filters,
                                    page=request.args.get("page", 1, type=page_number))
    return render_template(
        "transactions/index.html", page=page, rows=page.rows, form=form, filters=filters,
        counts=transaction_list.status_counts(current_user, filters),
        states=[(state, state.title()) for state in TRANSACTION_STATES],
        last_event_id=last_event_id, now=utcnow(),
    ), 400 if form.errors else 200


@bp.route("/new", methods=["GET", "POST"])
@role_required("requestor")
def new():
    form = NewTransactionForm()
    form.group.choices = [("", "No group: the person above")] + [
        (str(g.id), f"{g.name} ({g.threshold} of {len(g.members)} approve)")
        for g in groups.in_order()]
    if form.validate_on_submit():
        try:
            transaction = _send(form)
            # What the answer says is read before the commit: after it, each would be read
            # again from the database while the event is fanned out to every watcher.
            db.session.flush()
            public_id = transaction.public_id
            name = transaction.group_name or transaction.user.name
            via = ", ".join(sorted({channels.label(d.channel) for d in transaction.deliveries}))
            db.session.commit()
        except transactions.TransactionError as exc:
            db.session.rollback()
            apply_service_error(form, exc, "user")
        else:
            flash(f"Request sent to {name} through {via}.", "success")
            return redirect(url_for("transactions.show", public_id=public_id))
    suggestions = db.session.scalars(
        select(User).where(User.active.is_(True), User.id != current_user.id)
        .order_by(User.name).limit(USER_SUGGESTIONS)
    ).all()
    return render_template("transactions/new.html", form=form, suggestions=suggestions,
                           message_max=transactions.MESSAGE_MAX_CHARS), 400 if form.errors else 200


def _send(form):
    """The request the form asks for: to the person, or to the approval group."""
    common = dict(requestor=current_user, message=form.message.data, context=form.context.data)
    chosen = form.group.data or ""
    group = groups.find(int(chosen)) if chosen.isdigit() and int(chosen) <= MAX_ROW_ID else None
    has_user = bool((form.user.data or "").strip())
    if group is None and not has_user:
        raise transactions.TransactionError(
            "Enter the user's email, or pick an approval group." if len(form.group.choices) > 1
            else "Enter the user's email.", "user")
    if group is not None and has_user:
        raise transactions.TransactionError("Send to the person or to the group, not both: "
                                            "empty the email, or pick no group.", "user")
    if group is not None:
        return group_requests.create(group=group, **common)
    return transactions.create(user_email=form.user.data, **common)


@bp.route("/<public_id>")
@role_required("requestor")
def show(public_id):
    transaction = _visible_or_404(public_id)
    status = transaction.status_at(utcnow())
    return render_template(
        "transactions/show.html", t=transaction,
        status=status,
        timeline=delivery_report.worth_a_line(transactions.timeline(transaction)),
        deliveries=delivery_report.rows(transaction), now=utcnow(),
        may_cancel=transactions.may_cancel(transaction, current_user),
        last_event_id=event_log.latest_event_id(),
        incident=_incident_view(transaction, status),
        members=group_requests.progress(transaction) if transaction.threshold else None,
    )


def _incident_view(transaction, status):
    """What the page says of the PagerDuty incident: None when PagerDuty was not asked to
    open one; else its state, and whether the viewer may press Resolve (once final)."""
    if not any(d.channel == "pagerduty" for d in transaction.deliveries):
        return None
    problem = pagerduty_incidents.incident_problem(transaction)
    return {"state": pagerduty_incidents.state_words(transaction.pagerduty_incident),
            "resolvable": current_user.has_role("reviewer") and problem is None,
            "final": status != "pending"}


@bp.post("/<public_id>/resolve-incident")
@role_required("reviewer")
def resolve_incident(public_id):
    transaction = _visible_or_404(public_id)
    problem = pagerduty_incidents.request_resolve(
        transaction, transaction.status_at(utcnow()), actor=current_user)
    db.session.commit()
    if problem:
        flash(f"{problem}.", "error")
    else:
        flash("Resolving the PagerDuty incident: the timeline shows PagerDuty's answer.",
              "success")
    return redirect(url_for("transactions.show", public_id=public_id))


@bp.post("/<public_id>/cancel")
@role_required("requestor")
def cancel(public_id):
    transaction = _visible_or_404(public_id)
    if not transactions.may_cancel(transaction, current_user):
        abort(403)
    outcome = transactions.cancel(transaction, actor=current_user)
    db.session.commit()
    if outcome.changed:
        flash("The request is cancelled. The user can no longer answer it.", "success")
    else:
        flash(f"The request is already {outcome.status}; only a pending request can be cancelled.",
              "error")
    return redirect(url_for("transactions.show", public_id=public_id))


def _visible_or_404(public_id):
    transaction = transactions.find_visible(current_user, public_id)
    if transaction is None:
        abort(404)
    return transaction


@bp.after_request
def _no_store(response):
    """Transaction pages show the call-binding code: no cache (the browser's, a proxy's) keeps
    them, so Back after signing out, or the next person at the computer, shows nothing."""
    response.headers.setdefault("Cache-Control", "no-store")  # the stream says no-cache itself
    return response
