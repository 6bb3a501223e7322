"""The email settings page: what is special to an SMTP server.

What every channel's page promises is in every_channel/test_settings_page.py.
"""
import pytest
from sqlalchemy import select

from sendauth_dashboard import channels
from sendauth_dashboard.extensions import db
from sendauth_dashboard.models import Event
from tests.support.helpers import SMTP_PASSWORD, SMTP_USERNAME

from .fakes.smtp import FakeSmtp


def form(**fields):
    values = {"host": "smtp.example.com", "port": "587", "tls_mode": "starttls", "username": "",
              "password": "", "from_address": "sendauth@example.com"}
    values.update(fields)
    return values


def stored(app):
    with app.app_context():
        s = channels.channel("email").settings_row()
        return s.enabled, s.host, s.port, s.tls_mode, s.username, s.from_address


def test_a_new_page_suggests_starttls_on_port_587(client, as_admin):
    html = client.get("/settings/email").text
    assert 'name="port" type="text" value="587"' in html
    assert '<option selected value="starttls">' in html
    assert "data-channel-test>Send test email</button>" in html, "not disabled: it tests the form"


def test_every_malformed_field_is_shown_beside_it_at_once_and_nothing_is_saved(app, as_admin):
    response = as_admin.post("/settings/email", form(
        enabled="y", host="smtp://mail.example.com", port="70000", from_address="not an address"))
    assert response.status_code == 400
    for field_id in ("host", "port", "from_address"):
        assert f'id="{field_id}-errors"' in response.text
    assert "without smtp:// in front" in response.text
    assert "The port must be a number from 1 to 65535" in response.text
    assert "The from address is not a valid email address" in response.text
    assert stored(app) == (False, None, 587, "starttls", None, None)


def test_enabling_without_host_and_from_address_says_both_are_needed(app, as_admin):
    response = as_admin.post("/settings/email", form(enabled="y", host="", from_address=""))
    assert response.status_code == 400
    assert "Enter the SMTP host and enter the from address before enabling email." in response.text
    assert 'id="host-errors"' in response.text
    assert stored(app)[0] is False


def test_clearing_the_host_of_enabled_email_is_refused(app, as_admin):
    as_admin.post("/settings/email", form(enabled="y"))
    response = as_admin.post("/settings/email", form(enabled="y", host=""))
    assert response.status_code == 400
    assert "Enter the SMTP host before enabling email." in response.text
    assert stored(app)[:2] == (True, "smtp.example.com")


def test_a_server_without_a_login_needs_no_password(app, as_admin):
    assert as_admin.post("/settings/email", form(enabled="y", tls_mode="none", port="25")
                         ).status_code == 302
    assert stored(app) == (True, "smtp.example.com", 25, "none", None, "sendauth@example.com")


def test_changes_are_audited_in_words_without_the_password(app, as_admin):
    as_admin.post("/settings/email", form(username=SMTP_USERNAME, password=SMTP_PASSWORD))
    as_admin.post("/settings/email", form(username=SMTP_USERNAME, port="465", tls_mode="tls",
                                          enabled="y"))
    with app.app_context():
        audit = [e.data["changes"] for e in db.session.scalars(
            select(Event).where(Event.kind == "settings.email_changed").order_by(Event.id))]
    assert audit == [
        ["SMTP host set to smtp.example.com", f"username set to {SMTP_USERNAME}",
         "password added", "from address set to sendauth@example.com"],
        ["port 587 → 465", "TLS mode STARTTLS → TLS from the start", "integration enabled"],
    ]


@pytest.fixture
def app_config(smtp_certificate):
    return {"SMTP_CA_FILE": str(smtp_certificate[0]), "SMTP_TIMEOUT": 5.0}


def test_starttls_with_a_login_sends_the_test_email_to_the_admin(client, as_admin,
                                                                 smtp_certificate):
    server = FakeSmtp("starttls", smtp_certificate, login=(SMTP_USERNAME, SMTP_PASSWORD)).start()
    try:
        as_admin.post("/settings/email", form(host="127.0.0.1", port=str(server.port),
                                              username=SMTP_USERNAME, password=SMTP_PASSWORD))
        as_admin.post("/settings/email/test")
        (received,) = server.received
    finally:
        server.stop()
    assert received.login == SMTP_USERNAME
    assert received.rcpt_tos == ["admin@example.com"]
    assert received.message["Subject"] == "[TEST] Email from SendAuth"
    html = client.get("/settings/email").text
    assert ("The SMTP server accepted the test email. Check that it arrived at admin@example.com"
            in html)
    assert "Last email accepted" in html


def test_the_test_button_with_nothing_saved_says_what_to_save(client, as_admin):
    as_admin.post("/settings/email/test")
    assert ("Enter the SMTP host and enter the from address to send a test."
            in client.get("/settings/email").text)
