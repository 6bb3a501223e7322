"""The organisation's own messages: checked before they are kept ({link} in every body, only
known placeholders), previewed for a sample request with the SMS's segments and encoding, and
what the channels send; what people type still cannot format a Slack message or break an
email's headers."""
import re
from datetime import datetime, timezone
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from sendauth_dashboard.channels import message_templates as templates
from sendauth_dashboard.channels.email import request_email
from sendauth_dashboard.channels.slack import request_message
from sendauth_dashboard.extensions import db
from sendauth_dashboard.models import Event, MessageTemplates, User
from sendauth_dashboard.services.messages import wording
from tests.fakes.twilio import num_segments
from tests.support.helpers import configure_sms, database_rows, dispatch, send_request

DEFAULTS = {name: field.default for name, field in templates.FIELDS.items()}
LINK = "https://sendauth.example.com/authenticate/" + "T" * 43


def a_request(message="Is this you?", context="", requestor="Hal Helpdesk", user="Uma User"):
    return SimpleNamespace(requestor=SimpleNamespace(name=requestor, email="hal@example.com"),
                           user=SimpleNamespace(name=user, email="uma@example.com"),
                           message=message, context=context,
                           expires_at=datetime(2026, 12, 7, 9, 5, tzinfo=timezone.utc))


@pytest.mark.parametrize("field, text, words", [
    ("sms_body", "Verify here please", "The sms body must contain {link}"),
    ("slack_text", "{requestor} asks {whom}: {link}", "{whom} is not a placeholder. The known "
     "ones are {requestor}, {user}, {message}, {context}, {link}, {expires}, {group}, "
     "{approvals_needed}"),
    ("email_body", "{user!r} {link}", "{user!r} is not a placeholder"),
    ("email_body", "{user.__class__} {link}", "{user.__class__} is not a placeholder"),
    ("email_body", "Hello { {link}", "A brace is on its own"),
    ("email_subject", "Hello\nBcc: all@example.com", "write it on one line"),
    ("sms_body", "", "The sms body is empty"),
    ("sms_body", "x" * 501 + "{link}", "at most 500 characters; yours has 507"),
])
def test_a_template_that_cannot_be_used_is_refused_with_what_to_fix(app, field, text, words):
    with app.app_context():
        before = database_rows(app)
        with pytest.raises(wording.MessagesRefused) as refused:
            wording.save({**DEFAULTS, field: text}, actor=None)
        db.session.rollback()
        assert words in refused.value.errors[field]
        assert database_rows(app) == before


def test_a_line_whose_placeholders_are_empty_is_left_out_and_braces_can_be_written():
    pieces = templates.render("Hi {user} {{ok}}\nContext: {context}\nGo: {link}",
                              {"user": "Uma", "context": "", "link": LINK})
    assert pieces == [("text", "Hi Uma {ok}\nGo: "), ("link", LINK)]


def test_what_a_requestor_types_cannot_format_the_slack_message():
    fallback, blocks = request_message(
        a_request(message="*urgent* <!channel> <https://evil.example|click>"), LINK,
        "Request from {requestor}: {message} {link}")
    elements = blocks[0]["elements"][0]["elements"]
    assert elements[0] == {"type": "text", "text": "Request from Hal Helpdesk: *urgent* "
                                                   "<!channel> <https://evil.example|click> "}
    assert elements[1] == {"type": "link", "url": LINK}
    assert "<!channel>" not in fallback and "&lt;!channel&gt;" in fallback


def test_a_message_cannot_break_the_emails_headers_and_its_html_is_escaped():
    mail = request_email(transaction=a_request(message="Hi\r\nBcc: all@example.com <x>"),
                         link=LINK, sender="sendauth@example.com",
                         subject="{message} from {requestor}", body="<b>{message}</b>\n{link}")
    assert mail["Subject"] == "Hi Bcc: all@example.com <x> from Hal Helpdesk"
    assert mail["Bcc"] is None
    html = mail.get_body(("html",)).get_content()
    assert "&lt;b&gt;Hi<br>" in html and "&lt;x&gt;" in html and f'<a href="{LINK}">' in html
    assert mail.get_body(("plain",)).get_content().endswith(f"{LINK}\n")


def test_saving_the_default_keeps_sendauths_own_and_back_to_default_undoes_a_change(
        app, client, as_admin):
    page = client.get("/settings/messages")
    assert page.status_code == 200 and "SendAuth's default." in page.text
    assert as_admin.post("/settings/messages", DEFAULTS).status_code == 302
    with app.app_context():
        assert db.session.get(MessageTemplates, 1) is None, "nothing to keep"
    assert as_admin.post("/settings/messages", {**DEFAULTS, "slack_text": "Go: {link}"}
                         ).status_code == 302
    assert as_admin.post("/settings/messages/slack_text/default", {}).status_code == 302
    with app.app_context():
        assert templates.custom("slack_text") is None
        changes = [e.data["changes"] for e in db.session.scalars(
            select(Event).where(Event.kind == "settings.messages_changed"))]
    assert changes == [["slack text"], ["slack text (back to the default)"]]


def test_removing_the_link_is_refused_on_the_page_beside_the_field(app, client, as_admin):
    before = database_rows(app)
    page = as_admin.post("/settings/messages", {**DEFAULTS, "sms_body": "Call us back."})
    assert page.status_code == 400
    assert re.search(r'id="sms_body-errors">\s*<li>The sms body must contain \{link\}', page.text)
    assert database_rows(app) == before


SMS = "Acme IT ✓ needs you to confirm it is you. Verify or deny: {link}"


def test_a_custom_sms_is_what_twilio_receives_with_the_segments_the_page_showed(
        app, client, as_admin, make_user, fake_twilio):
    app.config["TWILIO_API_URL"] = fake_twilio.base_url
    configure_sms(app)
    preview = as_admin.post("/settings/messages/preview", {**DEFAULTS, "sms_body": SMS},
                            token_page="/settings/messages")
    shown = re.search(r'data-sms-segments="(\d+)" data-sms-encoding="([^"]+)"', preview.text)
    assert shown.group(2) == "UCS-2", "the ✓ makes it UCS-2: 70 characters a segment"
    assert int(shown.group(1)) > 1
    assert as_admin.post("/settings/messages", {**DEFAULTS, "sms_body": SMS}).status_code == 302
    uma = make_user("member", name="Uma User", notify_email=False, notify_sms=True,
                    phone="+14155550123")
    with app.app_context():
        requestor = db.session.scalar(select(User).where(User.role == "admin"))
    send_request(app, requestor, uma)
    assert dispatch(app) == ["sent"]
    (sms,) = fake_twilio.messages
    link = re.search(r"https?://\S+/authenticate/[A-Za-z0-9_-]{43}$", sms["Body"])
    assert link, "the link is whole, at the end"
    assert sms["Body"] == SMS.replace("{link}", link.group(0))
    assert num_segments(sms["Body"]) == int(shown.group(1))
