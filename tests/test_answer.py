"""The link a user answers through: /authenticate/<token>."""
import logging
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from sendauth_dashboard.extensions import db
from sendauth_dashboard.models import Event, Transaction, utcnow
from sendauth_dashboard.security import RedactTokens
from tests.support.accounts import PASSWORD
from tests.support.helpers import (
    answer_token,
    binding_code,
    configure_pagerduty,
    send_request,
    verify_form,
)
from tests.support.web import csrf_token_from


@pytest.fixture
def sent(app, make_user):
    """A pending request from Hana to Uma: (requestor, user, public id, token)."""
    configure_pagerduty(app)
    requestor = make_user("requestor", name="Hana Helpdesk")
    user = make_user("member", name="Uma User", notify_pagerduty=True)
    public_id = send_request(app, requestor, user, message="Confirm the laptop swap",
                             context="INC-77")
    return requestor, user, public_id, answer_token(app, public_id)


def status_of(app, public_id):
    with app.app_context():
        return db.session.scalar(select(Transaction.status).where(
            Transaction.public_id == public_id))


def test_signed_out_a_user_without_a_passkey_signs_in_and_comes_back(app, client, auth,
                                                                      make_user):
    from sendauth_dashboard.services.reports import organisation

    with app.app_context():
        organisation.update(require_passkey=False, actor=None)
        db.session.commit()
    configure_pagerduty(app)
    requestor = make_user("requestor", name="Hana Helpdesk")
    user = make_user("member", name="Pat Password", notify_pagerduty=True, passkey=False)
    token = answer_token(app, send_request(app, requestor, user))
    response = client.get(f"/authenticate/{token}")
    assert response.status_code == 302
    assert response.headers["Location"] == f"/login?next=/authenticate/{token}"
    response = auth.login(user, next_url=f"/authenticate/{token}")
    assert response.headers["Location"] == f"/authenticate/{token}"


def test_signed_out_the_page_shows_the_request_and_the_user_and_no_password(client, sent):
    _, _, _, token = sent
    response = client.get(f"/authenticate/{token}")
    assert response.status_code == 200
    page = response.text
    assert "Hana Helpdesk asks you to confirm it is you" in page
    assert "For <strong>Uma User</strong>" in page
    assert "Confirm the laptop swap" in page and "INC-77" in page
    assert "min" in page and "s left" in page
    assert 'name="code"' in page and "verify with my passkey" in page
    assert 'name="password"' not in page


def signed_out_form(app, client, token, authenticator, decision="verify", code=None,
                    options_token=None):
    """What a signed-out browser posts: the code and an assertion by ``authenticator`` for a
    challenge asked for by the page of ``options_token`` (this one by default)."""
    form = verify_form(app, client, options_token or token, None, code=code, signer=authenticator)
    if options_token:
        form["csrf_token"] = csrf_token_from(client.get(f"/authenticate/{token}").text)
        form["code"] = code or binding_code(app, token)
    return {**form, "decision": decision}


@pytest.mark.parametrize("decision, status", [("verify", "verified"), ("deny", "denied")])
def test_signed_out_one_passkey_assertion_answers_and_leaves_no_session(
        app, client, sent, decision, status):
    _, user, public_id, token = sent
    response = client.post(f"/authenticate/{token}", data=signed_out_form(
        app, client, token, user.authenticator, decision))
    assert response.status_code == 200, response.text
    assert status_of(app, public_id) == status
    with app.app_context():
        t = db.session.scalar(select(Transaction).where(Transaction.public_id == public_id))
        last = db.session.scalars(select(Event).where(Event.transaction_id == t.id)
                                  .order_by(Event.id.desc())).first()
    assert (last.kind, last.actor_id) == (f"transaction.{status}", user.id)
    assert last.data["proof"] == "passkey" and last.data["signed_in"] is False
    assert client.get("/").status_code == 302  # answering signed nobody in


def test_signed_out_a_wrong_code_with_the_passkey_denies(app, client, sent):
    _, user, public_id, token = sent
    right = binding_code(app, token)
    wrong = str((int(right) + 1) % 10 ** len(right)).zfill(len(right))
    response = client.post(f"/authenticate/{token}", data=signed_out_form(
        app, client, token, user.authenticator, code=wrong))
    assert response.status_code == 200
    assert "data-wrong-code" in response.text
    assert status_of(app, public_id) == "denied"


def test_signed_out_without_the_users_own_fresh_assertion_nothing_is_answered(
        app, client, sent, make_user):
    requestor, user, public_id, token = sent
    other = make_user("member", name="Mallory")
    refused = [signed_out_form(app, client, token, other.authenticator),
               signed_out_form(app, client, token, other.authenticator, "deny")]
    used = signed_out_form(app, client, token, user.authenticator)
    other_token = answer_token(app, send_request(app, requestor, user))
    refused.append(signed_out_form(app, client, token, user.authenticator,
                                   options_token=other_token))
    refused.append({**used, "credential": ""})
    for form in refused:
        assert client.post(f"/authenticate/{token}", data=form).status_code == 400
    assert status_of(app, public_id) == "pending"
    # The first use of the right assertion counts; its replay does not.
    client.post(f"/authenticate/{token}", data={**used, "decision": "deny"})
    assert status_of(app, public_id) == "denied"
    with app.app_context():
        refusals = db.session.scalar(select(func.count(Event.id)).where(
            Event.kind == "verification.refused"))
    assert refusals == 4


def test_an_open_page_learns_the_request_ended_without_a_reload(app, client, auth, sent):
    requestor, _, public_id, token = sent
    assert client.get(f"/authenticate/{token}/status").status_code == 204
    auth.login(requestor)
    auth.post(f"/transactions/{public_id}/cancel")
    auth.logout()
    response = client.get(f"/authenticate/{token}/status")
    assert response.status_code == 200
    assert "This request was cancelled. Ask Hana Helpdesk to send a new one." in response.text
    assert "<form" not in response.text
    assert client.get("/authenticate/nope/status").status_code == 404


def test_the_page_shows_who_asked_why_and_how_long_is_left(client, auth, sent):
    _, user, _, token = sent
    auth.login(user)
    response = client.get(f"/authenticate/{token}")
    page = response.text
    assert response.status_code == 200
    assert "Hana Helpdesk asks you to confirm it is you" in page
    assert "Confirm the laptop swap" in page and "INC-77" in page
    assert "4 min" in page or "5 min 00 s" in page
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("decision, status", [("verify", "verified"), ("deny", "denied")])
def test_the_user_verifies_or_denies_once(app, client, auth, sent, decision, status):
    _, user, public_id, token = sent
    auth.login(user)
    if decision == "verify":
        response = client.post(f"/authenticate/{token}",
                               data=verify_form(app, client, token, user))
    else:
        response = auth.post(f"/authenticate/{token}", {"decision": decision},
                             token_page=f"/authenticate/{token}")
    assert response.status_code == 200
    assert f"You {'verified' if decision == 'verify' else 'denied'} the request" in response.text
    assert status_of(app, public_id) == status
    with app.app_context():
        t = db.session.scalar(select(Transaction).where(Transaction.public_id == public_id))
        assert t.completed_at is not None
        kinds = db.session.scalars(select(Event.kind).where(Event.transaction_id == t.id)).all()
    assert kinds[-1] == f"transaction.{status}"
    again = client.get(f"/authenticate/{token}")
    assert again.status_code == 410
    assert "This request was already answered" in again.text


def test_someone_else_is_told_and_offered_to_sign_out(app, client, auth, sent, make_user):
    _, _, public_id, token = sent
    auth.login(make_user("member", name="Mallory"))
    response = client.get(f"/authenticate/{token}")
    assert response.status_code == 403
    assert "This request is for someone else" in response.text
    assert f'name="next" value="/authenticate/{token}"' in response.text
    assert auth.post(f"/authenticate/{token}", {"decision": "verify"}).status_code == 403
    assert status_of(app, public_id) == "pending"
    response = auth.post("/logout", {"next": f"/authenticate/{token}"})
    assert response.headers["Location"] == f"/login?next=/authenticate/{token}"


def test_the_requestor_cannot_answer_for_the_user(app, auth, sent):
    requestor, _, public_id, token = sent
    auth.login(requestor)
    assert auth.post(f"/authenticate/{token}", {"decision": "verify"}).status_code == 403
    assert status_of(app, public_id) == "pending"


def test_an_expired_request_says_so_and_what_to_do(app, client, auth, sent):
    _, user, public_id, token = sent
    with app.app_context():
        db.session.execute(update(Transaction).values(expires_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    auth.login(user)
    response = client.get(f"/authenticate/{token}")
    assert response.status_code == 410
    assert "This request expired. Ask Hana Helpdesk to send a new one." in response.text
    assert "ask Hana Helpdesk" in response.text
    assert auth.post(f"/authenticate/{token}", {"decision": "verify"}).status_code == 410
    assert status_of(app, public_id) == "pending"


def test_a_cancelled_request_says_so(app, client, auth, sent):
    requestor, user, public_id, token = sent
    auth.login(requestor)
    auth.post(f"/transactions/{public_id}/cancel")
    auth.logout()
    auth.login(user)
    response = client.get(f"/authenticate/{token}")
    assert response.status_code == 410
    assert "This request was cancelled" in response.text


@pytest.mark.parametrize("token", ["unknown-token", "x" * 500, "..%2f..%2fetc"])
def test_an_unknown_token_is_a_404_page(client, auth, sent, token):
    auth.login(sent[1])
    response = client.get(f"/authenticate/{token}")
    assert response.status_code == 404
    assert "There is nothing at this address" in response.text


def test_a_token_with_a_nul_character_is_a_400_page(client, auth, sent):
    auth.login(sent[1])
    response = client.get("/authenticate/%00")
    assert response.status_code == 400
    assert "contains a NUL character" in response.text


@pytest.mark.parametrize("form", [{"decision": "maybe"}, {}, {"decision": ["verify", "deny"]}])
def test_a_tampered_decision_is_a_400_and_changes_nothing(app, auth, sent, form):
    _, user, public_id, token = sent
    auth.login(user)
    assert auth.post(f"/authenticate/{token}", form).status_code == 400
    assert status_of(app, public_id) == "pending"


def test_an_answer_without_its_csrf_token_is_refused(app, client, auth, sent):
    _, user, public_id, token = sent
    auth.login(user)
    assert client.post(f"/authenticate/{token}", data={"decision": "verify"}).status_code == 400
    assert status_of(app, public_id) == "pending"


def test_the_token_never_reaches_a_request_log_line(caplog, sent):
    token = sent[3]
    caplog.set_level(logging.INFO)
    werkzeug_log = logging.getLogger("werkzeug")
    werkzeug_log.info('%s - - [%s] "%s" %s %s', "127.0.0.1", "now",
                      f"GET /authenticate/{token} HTTP/1.1", "200", "-")
    werkzeug_log.info('%s - - [%s] "%s" %s %s', "127.0.0.1", "now",
                      f"GET /login?next=%2Fauthenticate%2F{token} HTTP/1.1", "200", "-")
    assert token not in caplog.text
    assert "/authenticate/[token]" in caplog.text and "%2Fauthenticate%2F[token]" in caplog.text
    assert any(isinstance(f, RedactTokens) for f in werkzeug_log.filters)


@pytest.mark.parametrize("app_config", [{"BASE_URL": "https://localhost"}])
def test_over_https_the_answer_goes_through_though_its_page_sends_no_referer(app, client, sent):
    """The page's Referrer-Policy is no-referrer, so a browser posts its form, and the wrong
    user's sign-out button, without a Referer (and with ``Origin: null``)."""
    _, user, public_id, token = sent
    https = {"base_url": "https://localhost", "headers": {"Origin": "null"}}
    login_page = client.get("/login", base_url="https://localhost")
    client.post("/login", base_url="https://localhost", headers={  # a same-origin page
        "Origin": "https://localhost", "Referer": "https://localhost/login"}, data={
        "email": user.email, "password": PASSWORD, "csrf_token": csrf_token_from(login_page.text)})
    page = client.get(f"/authenticate/{token}", **https)
    assert page.headers["Referrer-Policy"] == "no-referrer"
    response = client.post(f"/authenticate/{token}",
                           data=verify_form(app, client, token, user, **https), **https)
    assert response.status_code == 200, response.text
    assert status_of(app, public_id) == "verified"
    signed_out = client.post("/logout", data={"csrf_token": csrf_token_from(page.text)}, **https)
    assert signed_out.status_code == 302
