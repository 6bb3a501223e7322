"""The attacker knows the user's password and is on the phone with the help desk: whatever
they change is refused, announced or shown to the requestor in words (DESIGN.md, "Trust").
Call binding and adding passkeys are in test_passkeys.py, enrolment links in
test_enrolment.py."""
import json
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from sendauth_dashboard.extensions import db
from sendauth_dashboard.models import Event, Passkey, Transaction, User, utcnow
from tests.support.accounts import PASSWORD
from tests.support.helpers import (
    answer_token,
    configure_email,
    configure_pagerduty,
    database_rows,
    dispatch,
    send_request,
    verify_form,
)
from tests.support.web import AuthActions, csrf_token_from


def preferences(app, user):
    with app.app_context():
        u = db.session.get(User, user.id)
        return (u.notify_email, u.notify_slack, u.slack_member_id, u.contacts_changed_at)


def kinds(app, kind):
    with app.app_context():
        return [e.data for e in db.session.scalars(
            select(Event).where(Event.kind == kind).order_by(Event.id))]


def proof(client, user):
    csrf = csrf_token_from(client.get("/profile/messaging").text)
    options = client.post("/profile/proof-options", headers={"X-CSRFToken": csrf})
    assert options.status_code == 200, options.text
    return json.dumps(user.authenticator.get(options.get_json()))


REDIRECT = {"slack": "y", "slack_member_id": "U0ATTACKER"}  # Slack only, to the attacker


@pytest.fixture
def uma(make_user, auth):
    """A member with a passkey and email on, signed in (as an attacker with her password
    would be)."""
    user = make_user("member", email="uma@example.com", name="Uma User")
    auth.login(user)
    return user


# -- changing how one is reached ----------------------------------------------------------------

@pytest.mark.usefixtures("every_channel_offered")
@pytest.mark.parametrize("extra, message", [
    ({}, "Prove it is you with one of your passkeys first"),
    ({"current_password": PASSWORD}, "Prove it is you with one of your passkeys first"),
    ({"proof": "{"}, "not readable"),
])
def test_the_password_alone_cannot_redirect_requests(app, client, auth, uma, extra, message):
    before = database_rows(app)
    response = auth.post("/profile/messaging", {**REDIRECT, **extra})
    assert response.status_code == 400
    assert message in response.text
    assert database_rows(app) == before


@pytest.mark.usefixtures("every_channel_offered")
def test_with_a_fresh_passkey_proof_the_change_is_saved_and_recorded(app, client, auth, uma):
    response = auth.post("/profile/messaging", {**REDIRECT, "proof": proof(client, uma)})
    assert response.status_code == 302
    email, slack, member_id, changed_at = preferences(app, uma)
    assert (email, slack, member_id) == (False, True, "U0ATTACKER") and changed_at is not None
    (event,) = kinds(app, "profile.messaging_changed")
    assert event["proof"] == "passkey"
    assert event["changes"] == ["Email off", "Slack on", "Slack member id added"]


@pytest.mark.usefixtures("every_channel_offered")
def test_a_proof_made_for_another_user_does_not_count(app, client, auth, uma, make_user):
    other = make_user("member")
    csrf = csrf_token_from(client.get("/profile/messaging").text)
    options = client.post("/profile/proof-options", headers={"X-CSRFToken": csrf}).get_json()
    foreign = json.dumps(other.authenticator.get(options))
    response = auth.post("/profile/messaging", {**REDIRECT, "proof": foreign})
    assert response.status_code == 400
    assert "This passkey belongs to someone else" in response.text
    assert preferences(app, uma)[0] is True


@pytest.mark.usefixtures("every_channel_offered")
def test_without_a_passkey_the_current_password_is_the_proof(app, client, auth, make_user):
    noel = make_user("member", name="Noel Nopass", passkey=False)
    auth.login(noel)
    page = client.get("/profile/messaging").text
    assert 'name="current_password"' in page and "data-proof-options-url" not in page
    wrong = auth.post("/profile/messaging", {**REDIRECT, "current_password": "not it at all"})
    assert wrong.status_code == 400 and "That is not your current password" in wrong.text
    assert preferences(app, noel)[1] is False
    right = auth.post("/profile/messaging", {**REDIRECT, "current_password": PASSWORD})
    assert right.status_code == 302
    assert kinds(app, "profile.messaging_changed")[-1]["proof"] == "password"


@pytest.mark.usefixtures("every_channel_offered")
def test_a_change_is_announced_through_the_channels_that_reached_the_user_before(
        app, client, auth, uma, fake_smtp):
    configure_email(app, fake_smtp.port)
    response = auth.post("/profile/messaging", {**REDIRECT, "proof": proof(client, uma)})
    assert response.status_code == 302
    assert dispatch(app) == ["sent"], "through the outbox"
    fake_smtp.wait_for(lambda fake: len(fake.received) == 1)
    (mail,) = fake_smtp.received
    assert mail.rcpt_tos == ["uma@example.com"]
    assert mail.message["Subject"] == "Your SendAuth messaging preferences changed"
    body = mail.body()
    assert "Email off; Slack on; Slack member id added" in body
    assert "If this was not you, tell your help desk" in body
    assert kinds(app, "profile.messaging_changed")[-1]["announced_through"] == ["email"]
    announced = kinds(app, "profile.change_announced")
    assert announced == [{"channel": "email", "attempt": 1, "http_status": None,
                          "outcome": "sent", "error": None}]


def test_nothing_changed_needs_no_proof_and_announces_nothing(app, client, auth, uma):
    response = auth.post("/profile/messaging", {"email": "y"})
    assert response.status_code == 302
    assert "Nothing changed" in client.get("/profile/messaging").text
    assert kinds(app, "profile.messaging_changed") == []


# -- what the requestor sees --------------------------------------------------------------------

@pytest.fixture
def requestor(make_user):
    return make_user("requestor", name="Hana Helpdesk")


def age_passkeys(app, days):
    with app.app_context():
        db.session.execute(update(Passkey).values(created_at=utcnow() - timedelta(days=days)))
        db.session.commit()


def risks_of(app, public_id):
    with app.app_context():
        return db.session.scalar(select(Transaction.risks)
                                 .where(Transaction.public_id == public_id))


def test_a_passkey_added_next_to_another_carries_a_banner_in_words(
        app, client, auth, requestor, make_user):
    from tests.support.accounts import register_passkey

    configure_pagerduty(app)
    uma = make_user("member", name="Uma User", notify_pagerduty=True)
    with app.app_context():
        register_passkey(app, db.session.get(User, uma.id), name="Second one")
        db.session.commit()
    public_id = send_request(app, requestor, uma)
    assert risks_of(app, public_id) == ["new_passkey"]
    auth.login(requestor)
    page = client.get(f"/transactions/{public_id}").text
    assert "Uma User registered a passkey less than 24 hours ago" in page
    assert "data-risk-banner>" in page.replace(" hidden", "")
    listing = client.get("/transactions/").text
    assert "Check: Uma User registered a passkey less than 24 hours ago" in listing


def test_a_user_invited_and_enrolled_today_raises_no_warning_but_a_passkey_reset_does(
        app, client, auth, requestor, make_user, admin):
    from sendauth_dashboard.services.people import enrolment

    configure_pagerduty(app)
    uma = make_user("member", name="Uma User", notify_pagerduty=True)
    with app.app_context():
        db.session.execute(update(User).where(User.id == uma.id)
                           .values(contacts_changed_at=utcnow()))
        db.session.commit()
    public_id = send_request(app, requestor, uma)
    assert risks_of(app, public_id) == ["first_passkey", "first_contacts"]
    auth.login(requestor)
    page = client.get(f"/transactions/{public_id}").text
    assert "data-risk-banner hidden" in page
    assert "registered their first passkey less than 24 hours ago" in page
    assert "Check:" not in client.get("/transactions/").text
    with app.app_context():
        enrolment.issue(db.session.get(User, uma.id), actor=db.session.get(User, admin.id))
        db.session.commit()
    assert "passkey_reset" in risks_of(app, send_request(app, requestor, uma))


def test_no_banner_when_nothing_weakens_the_proof(app, client, auth, requestor, make_user):
    configure_pagerduty(app)
    uma = make_user("member", name="Uma User", notify_pagerduty=True)
    age_passkeys(app, 2)
    public_id = send_request(app, requestor, uma)
    assert risks_of(app, public_id) == []
    auth.login(requestor)
    page = client.get(f"/transactions/{public_id}").text
    assert "data-risk-banner hidden" in page


def test_changed_contacts_are_flagged_for_a_day(app, client, auth, requestor, make_user):
    configure_pagerduty(app)
    uma = make_user("member", name="Uma User", notify_pagerduty=True)
    age_passkeys(app, 2)
    with app.app_context():
        db.session.execute(update(User).where(User.id == uma.id).values(
            contacts_changed_at=utcnow() - timedelta(hours=23),
            created_at=utcnow() - timedelta(days=3)))
        db.session.commit()
    assert risks_of(app, send_request(app, requestor, uma)) == ["contacts_changed"]
    with app.app_context():
        db.session.execute(update(User).where(User.id == uma.id)
                           .values(contacts_changed_at=utcnow() - timedelta(hours=25)))
        db.session.commit()
    assert risks_of(app, send_request(app, requestor, uma)) == []


def test_a_passkey_registered_after_sending_is_flagged_when_verifying(
        app, client, auth, requestor, make_user):
    from tests.support.accounts import register_passkey

    configure_pagerduty(app)
    uma = make_user("member", name="Uma User", notify_pagerduty=True)
    age_passkeys(app, 2)
    public_id = send_request(app, requestor, uma)
    assert risks_of(app, public_id) == []
    with app.app_context():
        register_passkey(app, db.session.get(User, uma.id), name="Late one")
        db.session.commit()
    token = answer_token(app, public_id)
    auth.login(uma)
    assert client.post(f"/authenticate/{token}",
                       data=verify_form(app, client, token, uma)).status_code == 200
    assert risks_of(app, public_id) == ["new_passkey"]
    with app.app_context():
        verified = db.session.scalar(select(Event).where(Event.kind == "transaction.verified"))
        assert verified.data["risks"] == ["new_passkey"]


def test_verifying_with_the_password_is_flagged(app, client, auth, requestor, make_user):
    from sendauth_dashboard.services.reports import organisation

    with app.app_context():
        organisation.update(require_passkey=False, actor=None)
        db.session.commit()
    configure_pagerduty(app)
    noel = make_user("member", name="Noel Nopass", passkey=False, notify_pagerduty=True)
    public_id = send_request(app, requestor, noel)
    token = answer_token(app, public_id)
    auth.login(noel)
    with app.app_context():
        code = db.session.scalar(select(Transaction.binding_code))
    page = client.get(f"/authenticate/{token}").text
    response = client.post(f"/authenticate/{token}", data={
        "csrf_token": csrf_token_from(page), "decision": "verify", "code": code,
        "password": PASSWORD})
    assert response.status_code == 200
    assert risks_of(app, public_id) == ["password"]
    auth.logout()
    auth.login(requestor)
    assert "Noel Nopass verified with their password, not a passkey" in client.get(
        f"/transactions/{public_id}").text


# -- signing out, and the password --------------------------------------------------------------

def test_a_copied_session_cookie_is_refused_after_sign_out(app, client, auth, make_user):
    user = make_user("member")
    auth.login(user)
    cookie = client.get_cookie("session").value
    thief = app.test_client()
    thief.set_cookie("session", cookie)
    assert thief.get("/").status_code == 200
    auth.logout()
    response = thief.get("/")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")


def test_signing_out_ends_only_that_session(app, client, make_user):
    user = make_user("member")
    other = app.test_client()
    AuthActions(client).login(user)
    AuthActions(other).login(user)
    AuthActions(client).logout()
    assert other.get("/").status_code == 200


def change_password(auth, current, new, confirm=None, proof=None):
    return auth.post("/profile/password", {"current_password": current, "new_password": new,
                                           "confirm": new if confirm is None else confirm,
                                           **({"proof": proof} if proof else {})},
                     token_page="/profile/password")


@pytest.mark.parametrize("current, new, confirm, message", [
    ("not my password", "plum kettle orbit sand", None, "That is not your current password"),
    (PASSWORD, "password1234", None, "too easy to guess"),
    (PASSWORD, "uma@example.com1", None, "mostly made of"),
    (PASSWORD, "short", None, "at least 12 characters"),
    (PASSWORD, "plum kettle orbit sand", "plum kettle orbit", "The two new passwords differ"),
    (PASSWORD, PASSWORD, None, "is the one you have now"),
])
def test_a_password_change_that_breaks_a_rule_is_refused(app, client, auth, uma, current, new,
                                                         confirm, message):
    before = database_rows(app)
    response = change_password(auth, current, new, confirm)
    assert response.status_code == 400
    assert message in response.text
    assert database_rows(app) == before


def test_a_password_change_ends_every_other_session(app, client, auth, uma):
    elsewhere = app.test_client()
    AuthActions(elsewhere).login(uma)
    response = change_password(auth, PASSWORD, "plum kettle orbit sand", proof=proof(client, uma))
    assert response.status_code == 302
    assert client.get("/").status_code == 200, "this session stays"
    assert elsewhere.get("/").status_code == 302, "the other one ended"
    auth.logout()
    assert auth.login(uma, "plum kettle orbit sand").status_code == 302
    assert kinds(app, "user.password_changed") == [
        {"email": "uma@example.com", "proof": "passkey", "announced_through": []}]


@pytest.mark.parametrize("extra, message", [
    ({}, "Prove it is you with one of your passkeys first"),
    ({"proof": "{"}, "not readable"),
])
def test_the_password_alone_cannot_change_the_password_of_someone_with_a_passkey(
        app, client, auth, uma, extra, message):
    elsewhere = app.test_client()
    AuthActions(elsewhere).login(uma)
    page = client.get("/profile/password").text
    assert "data-proof-options-url" in page and "data-passkey-proof" in page
    before = database_rows(app)
    response = auth.post("/profile/password", {
        "current_password": PASSWORD, "new_password": "plum kettle orbit sand",
        "confirm": "plum kettle orbit sand", **extra}, token_page="/profile/password")
    assert response.status_code == 400
    assert message in response.text
    assert database_rows(app) == before
    assert elsewhere.get("/").status_code == 200, "the owner is not signed out"


def test_a_password_change_is_announced_and_flagged_to_requestors_for_a_day(
        app, client, auth, uma, requestor, fake_smtp):
    configure_email(app, fake_smtp.port)
    age_passkeys(app, 2)
    response = change_password(auth, PASSWORD, "plum kettle orbit sand", proof=proof(client, uma))
    assert response.status_code == 302
    assert dispatch(app) == ["sent"]
    fake_smtp.wait_for(lambda fake: len(fake.received) == 1)
    (mail,) = fake_smtp.received
    assert mail.rcpt_tos == ["uma@example.com"]
    assert mail.message["Subject"] == "Your SendAuth password changed"
    assert "If this was not you, tell your help desk" in mail.body()
    assert kinds(app, "user.password_changed")[-1]["announced_through"] == ["email"]
    public_id = send_request(app, requestor, uma)
    assert risks_of(app, public_id) == ["password_changed"]
    helpdesk = AuthActions(app.test_client())
    helpdesk.login(requestor)
    assert "Uma User changed their password less than 24 hours ago" in \
        helpdesk.client.get(f"/transactions/{public_id}").text
    with app.app_context():
        db.session.execute(update(User).where(User.id == uma.id)
                           .values(password_changed_at=utcnow() - timedelta(hours=25)))
        db.session.commit()
    assert risks_of(app, send_request(app, requestor, uma)) == []


def test_without_a_passkey_the_current_password_changes_the_password(app, auth, make_user):
    noel = make_user("member", name="Noel Nopass", passkey=False)
    auth.login(noel)
    assert change_password(auth, PASSWORD, "plum kettle orbit sand").status_code == 302
    assert kinds(app, "user.password_changed")[-1]["proof"] == "password"


# -- passwords made of what a guesser tries first ---------------------------------------------

@pytest.mark.parametrize("password", [
    "ivyinvited12", "IvyInvited!!", "invited.ivy.1", "ivy.invited@example.com",
    "sendauth2026!", "SendAuth-SendAuth", "acme-acme-2026", "Acme Sendauth!",
])
def test_a_password_mostly_made_of_names_a_guesser_knows_is_refused(app, password):
    from sendauth_dashboard.services.people import accounts

    app.config["ORGANISATION_NAMES"] = ["Acme Corp"]
    with app.app_context(), pytest.raises(accounts.AccountError, match="mostly made of"):
        accounts.create_user(email="ivy.invited@example.com", name="Ivy Invited",
                             role="member", password=password)


@pytest.mark.parametrize("password", ["plum kettle orbit sand", "ivy plum kettle orbit"])
def test_a_password_with_a_name_among_other_words_is_accepted(app, password):
    from sendauth_dashboard.services.people import accounts

    with app.app_context():
        accounts.create_user(email="ivy.invited@example.com", name="Ivy Invited",
                             role="member", password=password)


def test_the_password_page_refuses_ones_own_name(app, auth, make_user):
    ivy = make_user("member", email="ivy@example.com", name="Ivy Invited", passkey=False)
    auth.login(ivy)
    response = change_password(auth, PASSWORD, "ivyinvited12")
    assert response.status_code == 400
    assert "This password is mostly made of ivyinvited" in response.text


# -- notices go through the outbox ----------------------------------------------------------

@pytest.fixture
def sms_app(app, fake_twilio):
    app.config["TWILIO_API_URL"] = fake_twilio.base_url
    from tests.support.helpers import configure_sms

    configure_sms(app)
    return app


def test_a_notice_is_durable_retried_and_goes_where_the_user_was_reached_before(
        sms_app, auth, make_user, fake_twilio):
    from sendauth_dashboard.models import Delivery
    from tests.fakes.http import Answer
    from tests.support.helpers import time_passes

    app = sms_app
    noel = make_user("member", name="Noel Nopass", passkey=False, notify_email=False,
                     notify_sms=True, phone="+14155550100")
    auth.login(noel)
    response = auth.post("/profile/messaging", {"sms": "y", "phone": "+14155550199",
                                                "current_password": PASSWORD})
    assert response.status_code == 302
    with app.app_context():
        (notice,) = db.session.scalars(select(Delivery)).all()
        assert (notice.action, notice.status, notice.user_id, notice.transaction_id) == (
            "notice", "queued", noel.id, None), "in the outbox with the change, not in memory"
        assert "+14155550100" not in (notice.notice_ciphertext or ""), "encrypted at rest"
    fake_twilio.answer_next(Answer(500, {"code": 20500, "message": "Internal Server Error",
                                         "status": 500}))
    assert dispatch(app) == ["retrying"], "a provider's 500 is retried, not lost"
    time_passes(app)
    assert dispatch(app) == ["sent"]
    (sms,) = fake_twilio.messages
    assert sms["To"] == "+14155550100", "the number that reached Noel before the change"
    assert "messaging preferences changed" in sms["Body"]
    assert [(e["outcome"], e["channel"]) for e in kinds(app, "profile.change_announced")] == [
        ("retrying", "sms"), ("sent", "sms")]
