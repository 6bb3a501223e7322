"""Email through a real SMTP server on 127.0.0.1: the message, the TLS modes, every answer."""
import smtplib
import socket
from datetime import datetime, timezone
from types import SimpleNamespace

import pytest

from sendauth_dashboard.channels import email
from tests.support.helpers import SMTP_PASSWORD, SMTP_USERNAME

from .fakes.smtp import FakeSmtp

LINK = "http://sendauth.test/authenticate/tok3n-tok3n-tok3n"


def transaction(message="Please confirm your password reset", context="Ticket #4521",
                user_email="uma@example.com", requestor_name="Hana Helpdesk"):
    return SimpleNamespace(
        requestor=SimpleNamespace(name=requestor_name, email="hana@example.com"),
        user=SimpleNamespace(name="Uma User", email=user_email),
        message=message, context=context,
        expires_at=datetime(2030, 1, 2, 3, 4, tzinfo=timezone.utc),
    )


def request_email(**fields):
    return email.request_email(transaction=transaction(**fields), link=LINK,
                              sender="sendauth@example.com")


def server(port, tls_mode="none", username=None, password=None):
    return email.Server("127.0.0.1", port, tls_mode, username, password)


def send(server_, message=None, ca_file=None, timeout=5.0):
    mailer = email.Mailer(timeout, ca_file)
    return mailer.send(email.Outgoing(server_, message or request_email()))


def test_the_email_names_the_requestor_and_carries_message_context_and_link():
    message = request_email()
    assert message["Subject"] == "Authentication request from Hana Helpdesk"
    assert message["To"] == "Uma User <uma@example.com>"
    assert message["From"] == "SendAuth <sendauth@example.com>"
    assert message["Message-ID"].endswith("@example.com>")
    text = message.get_body(("plain",)).get_content()
    assert "Hana Helpdesk (hana@example.com) asks you to confirm" in text
    assert "Message: Please confirm your password reset" in text
    assert "Context: Ticket #4521" in text
    assert f"\n{LINK}\n" in text
    assert "expires at 2030-01-02 03:04 UTC" in text
    html = message.get_body(("html",)).get_content()
    assert f'<a href="{LINK}">Verify or deny</a>' in html


def test_an_email_without_context_has_no_context_line():
    text = request_email(context="").get_body(("plain",)).get_content()
    assert "Context" not in text


def test_what_the_requestor_typed_cannot_become_html():
    html = request_email(message="<script>alert(1)</script>").get_body(("html",)).get_content()
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_the_html_part_is_a_document_that_keeps_the_line_breaks():
    message = request_email(message="Line one\nLine <two>\r\nLine three", context="a\nb")
    html = message.get_body(("html",)).get_content()
    assert html.startswith("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">")
    assert html.rstrip().endswith("</body></html>")
    assert "Line one<br>\nLine &lt;two&gt;<br>\nLine three" in html
    assert "<strong>Context:</strong> a<br>\nb</p>" in html


def test_a_non_ascii_local_part_goes_out_with_smtputf8_when_the_server_offers_it():
    fake = FakeSmtp(smtputf8=True).start()
    try:
        message = request_email(user_email="jürgen@example.com")
        result = send(server(fake.port), message)
    finally:
        fake.stop()
    assert result.accepted, result.error
    (received,) = fake.received
    assert received.rcpt_tos == ["jürgen@example.com"]
    assert received.message["To"].addresses[0].addr_spec == "jürgen@example.com"
    assert fake.defects == []


def test_a_non_ascii_domain_goes_out_in_its_ascii_form_to_any_server(fake_smtp):
    result = send(server(fake_smtp.port), request_email(user_email="uma@exämple.com"))
    assert result.accepted, result.error
    (received,) = fake_smtp.received
    assert received.rcpt_tos == ["uma@xn--exmple-cua.com"]
    assert str(received.message["To"]) == "Uma User <uma@xn--exmple-cua.com>"


def test_a_non_ascii_local_part_fails_with_its_reason_when_the_server_lacks_smtputf8(
        fake_smtp):
    result = send(server(fake_smtp.port), request_email(user_email="jürgen@example.com"))
    assert result.outcome == "permanent"
    assert result.error == (
        f"The SMTP server at 127.0.0.1:{fake_smtp.port} does not offer SMTPUTF8, which an "
        "address with letters beyond ASCII before the @ needs (jürgen@example.com). Use a "
        "server that offers it, or give the user an address in ASCII.")
    assert fake_smtp.received == []


def test_the_fake_refuses_a_message_the_standard_parser_finds_defects_in(fake_smtp):
    with smtplib.SMTP("127.0.0.1", fake_smtp.port, timeout=5) as connection:
        with pytest.raises(smtplib.SMTPDataError) as info:
            # An encoded word inside an address is a defect (RFC 2047 forbids it there).
            connection.sendmail("a@example.com", ["b@example.com"],
                                b"To: =?utf-8?q?j=C3=BCrgen?=@example.com\r\n"
                                b"From: a@example.com\r\nSubject: x\r\n\r\nhi\r\n")
    assert info.value.smtp_code == 554
    assert fake_smtp.received == [] and len(fake_smtp.defects) == 1
    fake_smtp.defects.clear()  # sent on purpose


def test_a_plain_server_receives_the_email_exactly_as_built(fake_smtp):
    message = request_email()
    result = send(server(fake_smtp.port), message)
    assert result.accepted and result.external_id == message["Message-ID"]
    (received,) = fake_smtp.received
    assert received.mail_from == "sendauth@example.com"
    assert received.rcpt_tos == ["uma@example.com"]
    assert received.message["Subject"] == "Authentication request from Hana Helpdesk"
    assert LINK in received.body()


@pytest.mark.parametrize("tls_mode", ["starttls", "tls"])
def test_both_tls_modes_log_in_over_an_encrypted_connection(smtp_certificate, tls_mode):
    fake = FakeSmtp(tls_mode, smtp_certificate, login=(SMTP_USERNAME, SMTP_PASSWORD)).start()
    try:
        result = send(server(fake.port, tls_mode, SMTP_USERNAME, SMTP_PASSWORD),
                      ca_file=str(smtp_certificate[0]))
        assert result.accepted, result.error
        assert [r.login for r in fake.received] == [SMTP_USERNAME]
    finally:
        fake.stop()


def test_a_wrong_password_is_permanent_with_the_servers_reply(smtp_certificate):
    fake = FakeSmtp("starttls", smtp_certificate, login=(SMTP_USERNAME, SMTP_PASSWORD)).start()
    try:
        result = send(server(fake.port, "starttls", SMTP_USERNAME, "not the password"),
                      ca_file=str(smtp_certificate[0]))
    finally:
        fake.stop()
    assert result.outcome == "permanent"
    assert result.error == "SMTP 535: 5.7.8 Authentication credentials invalid"
    assert fake.received == []


def test_a_certificate_nobody_vouches_for_is_refused(smtp_certificate):
    fake = FakeSmtp("tls", smtp_certificate).start()
    try:
        result = send(server(fake.port, "tls"))
    finally:
        fake.stop()
    assert result.outcome == "permanent"
    assert "certificate was not accepted" in result.error
    assert fake.received == []


def test_starttls_with_a_server_that_cannot_is_permanent(fake_smtp):
    result = send(server(fake_smtp.port, "starttls"))
    assert result.outcome == "permanent"
    assert "does not support this: STARTTLS extension not supported by server" in result.error


def test_tls_on_a_plain_port_says_to_check_the_mode(fake_smtp):
    result = send(server(fake_smtp.port, "tls"))
    assert result.outcome == "permanent"
    assert "Check that the TLS mode matches the port" in result.error


def test_a_5xx_for_the_recipient_is_permanent_with_the_servers_words(fake_smtp):
    fake_smtp.refuse_next_recipient("550 5.1.1 <uma@example.com>: Recipient address rejected")
    result = send(server(fake_smtp.port))
    assert result.outcome == "permanent"
    assert result.error == ("SMTP 550 for uma@example.com: 5.1.1 <uma@example.com>: "
                            "Recipient address rejected")


def test_a_4xx_is_retryable_with_the_servers_words(fake_smtp):
    fake_smtp.refuse_next_message("451 4.3.0 Mail server temporarily rejected message")
    result = send(server(fake_smtp.port))
    assert (result.outcome, result.error) == (
        "retryable", "SMTP 451: 4.3.0 Mail server temporarily rejected message")


def test_a_refused_connection_is_retryable():
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    result = send(server(port))
    assert result.outcome == "retryable"
    assert result.error == (f"Could not connect to the SMTP server at 127.0.0.1:{port} "
                            "(connection refused)")


def test_a_server_that_never_greets_is_retryable_after_the_timeout():
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        result = send(server(silent.getsockname()[1]), timeout=0.3)
    assert result.outcome == "retryable"
    assert "did not answer within 0.3 s (timeout)" in result.error


@pytest.mark.parametrize("raw, cleaned", [
    (" SMTP.Example.com ", "smtp.example.com"), ("10.0.0.25", "10.0.0.25"), ("", None),
])
def test_hosts_are_trimmed_and_lower_cased(raw, cleaned):
    assert email.clean_host(raw) == cleaned


@pytest.mark.parametrize("raw, message", [
    ("smtp://mail.example.com", "without smtp:// in front"),
    ("mail.example.com:587", "Enter the port in the Port field"),
    ("mail example.com", "only letters, digits, dots and hyphens"),
])
def test_a_malformed_host_says_what_to_write_instead(raw, message):
    with pytest.raises(ValueError, match=message):
        email.clean_host(raw)


@pytest.mark.parametrize("raw", ["0", "65536", "five", "", "-1"])
def test_a_port_outside_1_to_65535_is_refused(raw):
    with pytest.raises(ValueError, match="The port must be a number from 1 to 65535"):
        email.clean_port(raw)


def test_the_from_address_must_be_an_email_address():
    assert email.clean_from_address(" SendAuth@Example.com ") == "SendAuth@example.com"
    with pytest.raises(ValueError, match="The from address is not a valid email address"):
        email.clean_from_address("sendauth at example.com")
