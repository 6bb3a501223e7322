"""The transaction list, the send form, a transaction's page, and cancelling."""
from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from .. import channels
from ..auth import role_required
from ..extensions import db
from ..forms import apply_service_error
from ..ids import row_id
from ..models import User
from ..services import transactions
from ..services.live import event_log
from . import bp
from .forms import FilterForm, NewTransactionForm

USER_SUGGESTIONS = 500


@bp.route("/")
@role_required("requestor")
def index():
    form = FilterForm(request.args)
    status = form.status.data if form.status.data in transactions.STATUS_FILTERS else ""
    filters = transactions.Filters(
        status=status, user=(form.user.data or "")[:254],
        requestor=(form.requestor.data or "")[:254],
    )
    if not current_user.has_role("reviewer"):
        filters = transactions.Filters(status=filters.status, user=filters.user)
    before = request.args.get("before", type=row_id)
    # Read the latest event id before the rows, so the stream replays anything newer.
    last_event_id = event_log.latest_event_id()
    rows, older = transactions.listing(current_user, filters, before_id=before)
    return render_template(
        "transactions/index.html", rows=rows, form=form, filters=filters, older=older,
        first_page=before is None, last_event_id=last_event_id,
        effective_status=transactions.effective_status,
    )


@bp.route("/new", methods=["GET", "POST"])
@role_required("requestor")
def new():
    form = NewTransactionForm()
    if form.validate_on_submit():
        try:
            transaction = transactions.create(
                requestor=current_user, user_email=form.user.data, message=form.message.data,
                context=form.context.data,
            )
            db.session.commit()
        except transactions.TransactionError as exc:
            db.session.rollback()
            apply_service_error(form, exc, "user")
        else:
            via = ", ".join(channels.label(d.channel) for d in transaction.deliveries)
            flash(f"Request sent to {transaction.user.name} through {via}.", "success")
            return redirect(url_for("transactions.show", public_id=transaction.public_id))
    suggestions = db.session.scalars(
        select(User).where(User.active.is_(True), User.id != current_user.id)
        .order_by(User.name).limit(USER_SUGGESTIONS)
    ).all()
    return render_template("transactions/new.html", form=form, suggestions=suggestions,
                           message_max=transactions.MESSAGE_MAX_CHARS), 400 if form.errors else 200


@bp.route("/<public_id>")
@role_required("requestor")
def show(public_id):
    transaction = _visible_or_404(public_id)
    return render_template(
        "transactions/show.html", t=transaction,
        status=transactions.effective_status(transaction),
        timeline=transactions.timeline(transaction),
        may_cancel=transactions.may_cancel(transaction, current_user),
        last_event_id=event_log.latest_event_id(),
    )


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
