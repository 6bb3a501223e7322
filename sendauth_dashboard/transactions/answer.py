"""``/authenticate/<token>``: the user the request is for verifies or denies it."""
from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from .. import client_limits
from ..extensions import db
from ..models import utcnow
from ..services import transactions
from . import answer_bp
from .forms import AnswerForm


@answer_bp.route("/authenticate/<token>", methods=["GET", "POST"])
@client_limits.authentication_page
def authenticate(token):
    transaction = transactions.find_by_token(token)
    if transaction is None:
        abort(404)
    if not current_user.is_authenticated:
        flash("Sign in as yourself to answer this authentication request.", "info")
        return redirect(url_for("auth.login", next=request.path))
    if current_user.id != transaction.user_id:
        return render_template("answer/wrong_user.html", t=transaction), 403
    status = transactions.effective_status(transaction)
    if status != "pending":
        return render_template("answer/finished.html", t=transaction, status=status), 410
    form = AnswerForm()
    if request.method == "POST":
        decisions = request.form.getlist("decision")
        if not form.validate_on_submit() or decisions not in (["verify"], ["deny"]):
            abort(400)  # an ambiguous answer to "is this you?" is no answer
        decision = decisions[0]
        outcome = transactions.answer(transaction, decision, user=current_user)
        db.session.commit()
        if not outcome.changed:
            return render_template("answer/finished.html", t=transaction,
                                   status=outcome.status), 410
        return render_template("answer/done.html", t=transaction, status=outcome.status)
    seconds_left = int((transaction.expires_at - utcnow()).total_seconds())
    return render_template("answer/answer.html", t=transaction, form=form,
                           seconds_left=max(0, seconds_left))


@answer_bp.after_request
def _no_referrer(response):
    """The address holds the token: never send it on as a Referer, never cache the page."""
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    return response
