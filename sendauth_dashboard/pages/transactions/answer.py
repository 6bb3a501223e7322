"""``/authenticate/<token>``: the user the request is for verifies or denies it; or, for a
request sent to an approval group, the member whose own link it is approves or denies it."""
from dataclasses import dataclass

from flask import abort, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user

from ... import client_limits
from ...extensions import db
from ...models import utcnow
from ...services.approvals import group_requests
from ...services.people import passkeys, proofs
from ...services.requests import transactions, verification
from . import answer_bp
from .forms import AnswerForm


@dataclass(frozen=True)
class Link:
    """What an answer link is for: the transaction, who answers it, and (a group's member)
    their approval."""

    t: object
    answerer: object
    approval: object = None


def _link(token):
    transaction = transactions.find_by_token(token)
    if transaction is not None:
        return Link(transaction, transaction.user)
    approval = group_requests.find_by_token(token)
    if approval is None:
        abort(404)
    return Link(approval.transaction, approval.user, approval)


def _answerable(token):
    """(link, None) when whoever holds the link may try to answer it now; else
    (None, response). Signed out, the user's own passkey is the proof (no password wall);
    a user without one signs in as before, where the organisation allows a password."""
    link = _link(token)
    transaction, answerer = link.t, link.answerer
    if not answerer.is_active:
        abort(404)
    status = transaction.status_at(utcnow())
    if link.approval is not None and link.approval.decision and status == "pending":
        status = "answered"
    if not current_user.is_authenticated:
        if status == "pending" and not passkeys.has_passkey(answerer):
            flash("Sign in as yourself to answer this authentication request.", "info")
            return None, redirect(url_for("auth.login", next=request.path))
    elif current_user.id != answerer.id:
        return None, (render_template("answer/wrong_user.html", t=transaction), 403)
    if status != "pending":
        return None, (render_template("answer/finished.html", t=transaction, status=status,
                                      approval=link.approval), 410)
    return link, None


@answer_bp.route("/authenticate/<token>", methods=["GET", "POST"])
@client_limits.authentication_page
def authenticate(token):
    link, refusal = _answerable(token)
    if refusal is not None:
        return refusal
    transaction = link.t
    form = AnswerForm()
    if request.method == "POST":
        decisions = request.form.getlist("decision")
        if not form.validate_on_submit() or decisions not in (["verify"], ["deny"]):
            abort(400)  # an ambiguous answer to "is this you?" is no answer
        try:
            outcome = _answer(link, decisions[0])
        except verification.VerificationError as exc:
            db.session.commit()  # the used-up challenge and the refusal's event count
            return _answer_page(link, form, error=exc), 400
        db.session.commit()
        if not outcome.changed:
            return render_template("answer/finished.html", t=transaction,
                                   status=outcome.status, approval=link.approval), 410
        return render_template("answer/done.html", t=transaction, status=outcome.status,
                               approval=link.approval,
                               wrong_code=decisions == ["verify"] and outcome.status == "denied")
    return _answer_page(link, form)


def _answer(link, decision):
    """The outcome of the posted answer: signed in as before; signed out, with the assertion;
    a group's member with their own proof, and no code."""
    transaction = link.t
    if link.approval is not None:
        return group_requests.answer_as_member(
            link.approval, decision, signed_in=current_user.is_authenticated,
            credential=request.form.get("credential"), password=request.form.get("password"))
    if not current_user.is_authenticated:
        return verification.answer_with_passkey(
            transaction, decision, code=request.form.get("code"),
            credential=request.form.get("credential"))
    if decision == "deny":
        return transactions.answer(transaction, "deny", user=current_user)
    return verification.verify(
        transaction, user=current_user, code=request.form.get("code"),
        credential=request.form.get("credential"), password=request.form.get("password"))


def _answer_page(link, form, error=None):
    transaction = link.t
    seconds_left = int((transaction.expires_at - utcnow()).total_seconds())
    signed_in = current_user.is_authenticated
    return render_template(
        "answer/answer.html", t=transaction, form=form, seconds_left=max(0, seconds_left),
        proof=proofs.needed(link.answerer, answering=True), error=error, signed_in=signed_in,
        answerer=link.answerer, approval=link.approval)


@answer_bp.post("/authenticate/<token>/passkey-options")
@client_limits.authentication_page
def passkey_options(token):
    """What the page's script hands to navigator.credentials.get: a challenge for this request,
    for one of its user's own passkeys."""
    link, refusal = _answerable(token)
    if refusal is not None:
        return refusal
    try:
        options = passkeys.assertion_options(link.t, link.answerer)
    except passkeys.PasskeyError as exc:
        return jsonify(error=str(exc)), 400
    db.session.commit()
    return current_app.response_class(options, mimetype="application/json")


@answer_bp.get("/authenticate/<token>/status")
@client_limits.answer_status
def status(token):
    """For a page left open: 204 while the request waits for its answer; once it has ended,
    the page's new content (a fragment), so the controls go without a reload."""
    link = _link(token)
    state = link.t.status_at(utcnow())
    if state == "pending":
        return "", 204
    return render_template("answer/_ended.html", t=link.t, status=state,
                           approval=link.approval)


@answer_bp.after_request
def _no_referrer(response):
    """The address holds the token: never send it on as a Referer, never cache the page."""
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    return response
