"""The issue's "done when", tried as people would: through the pages where the pages exist.

A user turns on email and PagerDuty; with PagerDuty on, both deliver; the admin turns
PagerDuty off, and the next request reaches the user by email only; a user with no reachable
channel cannot be sent a request, and the requestor is told why. (Sending goes through
``transactions.create``, what the send form calls, until that form exists.)
"""
import pytest
from sqlalchemy import select

from sendauth_dashboard.extensions import db
from sendauth_dashboard.models import Delivery, Transaction
from sendauth_dashboard.services.requests import transactions
from tests.support.helpers import TEST_KEY, dispatch, send_request
from tests.support.web import AuthActions


@pytest.fixture
def app_config(fake_pagerduty):
    return {"PAGERDUTY_EVENTS_URL": fake_pagerduty.url}


def signed_in(app, user):
    auth = AuthActions(app.test_client())
    assert auth.login(user).status_code == 302
    return auth


def passkey_proof(auth, person):
    """A fresh assertion with the person's passkey, as the messaging page's script makes."""
    import json

    options = auth.client.post("/profile/proof-options",
                               headers={"X-CSRFToken": auth.csrf_token("/profile/messaging")})
    return json.dumps(person.authenticator.get(options.get_json()))


def channels_of(app, public_id):
    with app.app_context():
        return db.session.scalars(
            select(Delivery.channel).join(Transaction)
            .where(Transaction.public_id == public_id).order_by(Delivery.id)).all()


def test_email_keeps_reaching_a_pagerduty_user_when_the_admin_turns_pagerduty_off(
        app, make_user, fake_pagerduty, fake_smtp):
    admin = signed_in(app, make_user("admin", name="Ada Admin"))
    assert admin.post("/settings/pagerduty", {
        "enabled": "y", "integration_key": TEST_KEY, "severity": "critical"}).status_code == 302
    assert admin.post("/settings/email", {
        "enabled": "y", "host": "127.0.0.1", "port": str(fake_smtp.port), "tls_mode": "none",
        "from_address": "sendauth@example.com"}).status_code == 302

    uma = make_user("member", name="Uma User", email="uma@example.com")
    user = signed_in(app, uma)
    assert user.post("/profile/messaging", {
        "pagerduty": "y", "email": "y", "phone": "", "slack_member_id": "",
        "proof": passkey_proof(user, uma)}).status_code == 302
    # The change is announced by email, the channel that reached Uma before it (the outbox).
    assert dispatch(app) == ["sent"]
    fake_smtp.wait_for(lambda fake: len(fake.received) == 1)
    notice = fake_smtp.received.pop()
    assert notice.message["Subject"] == "Your SendAuth messaging preferences changed"
    assert "Requests reach you through: <strong>PagerDuty, Email</strong>." in \
        user.client.get("/profile/messaging").text

    requestor = make_user("requestor", name="Hana Helpdesk")
    first = send_request(app, requestor, uma, message="Confirm the laptop swap", context="INC-1")
    assert channels_of(app, first) == ["pagerduty", "email"]
    assert sorted(dispatch(app)) == ["sent", "sent"]
    (incident,) = fake_pagerduty.accepted
    assert incident["dedup_key"] == first
    (email,) = fake_smtp.received
    assert email.rcpt_tos == ["uma@example.com"]
    assert email.message["Subject"] == "Authentication request from Hana Helpdesk"
    assert incident["links"][0]["href"] in email.body()

    assert admin.post("/settings/pagerduty", {"severity": "critical"}).status_code == 302
    preferences = user.client.get("/profile/messaging").text
    assert "Your organisation has not set up PagerDuty, SMS and Slack." in preferences
    assert 'name="pagerduty"' not in preferences, "not offered while it is off"
    assert "Requests reach you through: <strong>Email</strong>." in preferences

    second = send_request(app, requestor, uma, message="Confirm the VPN reset", context="INC-2")
    assert channels_of(app, second) == ["email"]
    assert dispatch(app) == ["sent"]
    assert len(fake_pagerduty.received) == 1
    assert [r.message["Subject"] for r in fake_smtp.received] == [
        "Authentication request from Hana Helpdesk"] * 2
    assert "Confirm the VPN reset" in fake_smtp.received[1].body()

    only_pagerduty = make_user("member", name="Paul Pager", notify_pagerduty=True,
                               notify_email=False)
    with pytest.raises(transactions.TransactionError) as refused:
        send_request(app, requestor, only_pagerduty)
    assert str(refused.value).startswith(
        "No channel can reach Paul Pager. PagerDuty: the PagerDuty integration is disabled; "
        "Email: off in their messaging preferences;")
    assert refused.value.field == "user"
