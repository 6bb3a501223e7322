"""Email through the organisation's SMTP server: settings, messages, and what the server said.

A reply code 5xx means the server will never take the message (unknown recipient, refused
login): permanent. 4xx, a dropped connection or a timeout may pass later: retryable. Errors
carry the server's own reply text.

An address whose local part is not ASCII (``jürgen@example.com``) goes out with SMTPUTF8
(RFC 6531) when the server offers it; when it does not, the delivery fails and says why. A
message that cannot be written at all (a header Python's email package refuses) is a failed
delivery with the reason too, never an exception in the dispatcher.
"""
import re
import smtplib
import ssl
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.errors import MessageError
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from html import escape

from email_validator import EmailNotValidError, validate_email

from ..models import EmailSettings
from . import message_templates
from .base import Channel, Page
from .http import ERROR_TEXT_MAX_CHARS, SendResult, truncate
from .integration import Setting

TLS_MODE_LABELS = {
    "starttls": "STARTTLS: plain connection upgraded to TLS (usually port 587)",
    "tls": "TLS from the start, also called SMTPS (usually port 465)",
    "none": "None: no encryption (only for a relay on a network you trust)",
}
TLS_MODE_WORDS = {"starttls": "STARTTLS", "tls": "TLS from the start", "none": "no encryption"}
SENDER_NAME = "SendAuth"
_HOST_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                      r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*")


def clean_host(raw):
    """The SMTP server's host name or IP address, or None when left empty."""
    host = (raw or "").strip().rstrip(".")
    if not host:
        return None
    if "://" in host:
        raise ValueError("Enter only the server's name, like smtp.example.com, without "
                         f"{host.split('://')[0]}:// in front.")
    if ":" in host:
        raise ValueError("Enter the port in the Port field, not after the host name.")
    if len(host) > 253 or not _HOST_RE.fullmatch(host):
        raise ValueError("The SMTP host must be a host name like smtp.example.com or an IP "
                         "address, with only letters, digits, dots and hyphens.")
    return host.lower()


def clean_port(raw):
    text = str(raw if raw is not None else "").strip()
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise ValueError("The port must be a number from 1 to 65535: usually 587 for STARTTLS, "
                         "465 for TLS.")
    return int(text)


def clean_tls_mode(raw):
    if raw not in TLS_MODE_LABELS:
        raise ValueError(f"Choose a TLS mode: {', '.join(TLS_MODE_LABELS)}.")
    return raw


def clean_username(raw):
    username = (raw or "").strip()
    if len(username) > 255:
        raise ValueError("The username must be at most 255 characters.")
    return username or None


def clean_password(raw):
    """Kept exactly as typed: spaces can be part of a password."""
    if len(raw) > 1000:
        raise ValueError("The password must be at most 1000 characters.")
    return raw


def clean_from_address(raw):
    address = (raw or "").strip()
    if not address:
        return None
    try:
        checked = validate_email(address, check_deliverability=False, globally_deliverable=False)
    except EmailNotValidError as exc:
        raise ValueError(f"The from address is not a valid email address: {exc}") from None
    return checked.normalized


@dataclass(frozen=True)
class Server:
    host: str
    port: int
    tls_mode: str
    username: str | None
    password: str | None = field(repr=False)


@dataclass(frozen=True)
class Outgoing:
    server: Server
    message: EmailMessage | None
    # Why no message could be written; the send then fails with it, without connecting.
    problem: str | None = None

    @property
    def international(self):
        """Whether an address needs SMTPUTF8: its local part is not ASCII."""
        return not all(address.isascii() for address in _addresses(self.message))


def _addresses(message):
    return [address.addr_spec for name in ("From", "To")
            for address in message[name].addresses]


def address(name, addr_spec):
    """A From or To header's address. A non-ASCII domain is written in its ASCII form
    (IDNA: exämple.com is xn--exmple-cua.com), which every server takes; a non-ASCII local
    part is kept as it is (it can go only with SMTPUTF8), where ``Address(addr_spec=...)``
    would raise."""
    username, _, domain = addr_spec.rpartition("@")
    if not domain.isascii():
        try:
            domain = domain.encode("idna").decode("ascii")
        except UnicodeError:
            pass  # left as it is: it can go only with SMTPUTF8
    return Address(name, username, domain)


def _html_lines(text):
    """Text for HTML, with its line breaks kept."""
    return escape(text).replace("\r\n", "\n").replace("\n", "<br>\n")


def _html_document(title, body):
    return (f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{escape(title)}'
            f"</title></head>\n<body>{body}</body></html>\n")


def _message(*, sender, recipient, subject, text, html):
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = address(SENDER_NAME, sender)
    message["To"] = recipient
    message["Date"] = format_datetime(datetime.now(timezone.utc))
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2])
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(text)
    message.add_alternative(_html_document(subject, html), subtype="html")
    # Written once here, so a message that cannot be written fails while it is built.
    message.as_bytes(policy=message.policy.clone(utf8=True))
    return message


def request_email(*, transaction, link, sender, subject=None, body=None):
    """The email for an authentication request: who asks, their message and context, the link;
    ``subject`` and ``body``, the organisation's words, when it has its own (Settings →
    Messages)."""
    requestor, user = transaction.requestor, transaction.user
    values = message_templates.values_of(transaction, link)
    subject = (message_templates.one_line(message_templates.as_text(
        message_templates.render(subject, values))) if subject is not None
        else f"Authentication request from {requestor.name}")
    text, html = (templated_body(body, values) if body is not None
                  else _default_body(transaction, link))
    return _message(sender=sender, recipient=address(user.name, user.email), subject=subject,
                    text=text, html=html)


def templated_body(template, values):
    """The text part as rendered; the HTML part with every value escaped, the link a link."""
    pieces = message_templates.render(template, values)
    html = "".join(f'<a href="{escape(value)}">{escape(value)}</a>' if kind == "link"
                   else _html_lines(value) for kind, value in pieces)
    return message_templates.as_text(pieces) + "\n", f"<p>{html}</p>"


def _default_body(transaction, link):
    requestor = transaction.requestor
    expires = transaction.expires_at.strftime(message_templates.EXPIRES_FORMAT)
    lines = [
        f"{requestor.name} ({requestor.email}) asks you to confirm that it is really you.",
        "",
        f"Message: {transaction.message}",
    ]
    if transaction.context:
        lines.append(f"Context: {transaction.context}")
    lines += [
        "",
        "Verify or deny:",
        link,
        "",
        f"The link works once and expires at {expires}. If you did not expect this request, "
        "choose deny.",
    ]
    context = (f"<p><strong>Context:</strong> {_html_lines(transaction.context)}</p>"
               if transaction.context else "")
    html = (
        f"<p>{escape(requestor.name)} ({escape(requestor.email)}) asks you to confirm that it "
        "is really you.</p>"
        f"<p><strong>Message:</strong> {_html_lines(transaction.message)}</p>{context}"
        f'<p><a href="{escape(link)}">Verify or deny</a></p>'
        f"<p>The link works once and expires at {expires}. If you did not expect this "
        "request, choose deny.</p>"
    )
    return "\n".join(lines) + "\n", html


def test_email(*, sender, sent_by, settings_url):
    text = (f"A test message from SendAuth's email settings, sent by {sent_by.name}. "
            "Authentication requests will arrive like this. Nobody needs to do anything.\n\n"
            f"Email settings: {settings_url}\n")
    html = (f"<p>A test message from SendAuth's email settings, sent by "
            f"{escape(sent_by.name)}. Authentication requests will arrive like this. Nobody "
            f'needs to do anything.</p><p><a href="{escape(settings_url)}">Email settings</a></p>')
    return _message(sender=sender, recipient=address(sent_by.name, sent_by.email),
                    subject="[TEST] Email from SendAuth", text=text, html=html)


class Mailer:
    """Talks SMTP with a timeout for each step, trusting the system's CAs or ``ca_file``."""

    def __init__(self, timeout, ca_file=None):
        self.timeout = timeout
        self.ca_file = ca_file

    @classmethod
    def from_config(cls, config):
        return cls(config["SMTP_TIMEOUT"], config["SMTP_CA_FILE"])

    def send(self, outgoing):
        """Deliver the message through its server; the SendResult says what the server said."""
        if outgoing.problem:
            return SendResult("permanent", error=outgoing.problem)
        server, message = outgoing.server, outgoing.message
        where = f"{server.host}:{server.port}"
        try:
            with self._connect(server) as connection:
                if server.username:
                    connection.login(server.username, server.password or "")
                connection.ehlo_or_helo_if_needed()
                if outgoing.international and not connection.has_extn("smtputf8"):
                    return _no_smtputf8(where, message)
                connection.send_message(message)
        except smtplib.SMTPRecipientsRefused as exc:
            recipient, (code, reply) = next(iter(exc.recipients.items()))
            return _reply_result(code, reply, f" for {recipient}")
        except smtplib.SMTPResponseException as exc:
            return _reply_result(exc.smtp_code, exc.smtp_error)
        except smtplib.SMTPNotSupportedError as exc:
            reason = str(exc).rstrip(".")
            return SendResult("permanent", error=f"The SMTP server at {where} does not "
                                                 f"support this: {reason}. Check the TLS mode.")
        except smtplib.SMTPServerDisconnected as exc:
            if isinstance(exc.__context__, TimeoutError):
                return self._timed_out(server)
            return SendResult("retryable", error=f"The SMTP server at {where} closed the "
                                                 f"connection: {exc or 'no reason given'}")
        except smtplib.SMTPException as exc:
            return SendResult("permanent", error=f"The SMTP server at {where} cannot be used "
                                                 f"as set up: {exc}")
        except ssl.SSLCertVerificationError as exc:
            return SendResult("permanent", error=f"The SMTP server's certificate was not "
                                                 f"accepted ({exc.verify_message}). Check the "
                                                 "host name.")
        except ssl.SSLError as exc:
            return SendResult("permanent", error=f"TLS with {where} failed ({exc.reason}). Check "
                                                 "that the TLS mode matches the port.")
        except TimeoutError:
            return self._timed_out(server)
        except ConnectionRefusedError:
            return SendResult("retryable", error=f"Could not connect to the SMTP server at "
                                                 f"{where} (connection refused)")
        except OSError as exc:
            return SendResult("retryable", error=f"Could not connect to the SMTP server at "
                                                 f"{where}: {exc.strerror or exc}")
        return SendResult("accepted", external_id=message["Message-ID"])

    def _timed_out(self, server):
        return SendResult("retryable", error=f"The SMTP server at {server.host}:{server.port} "
                                             f"did not answer within {self.timeout:g} s (timeout)")

    def _connect(self, server):
        context = ssl.create_default_context(cafile=self.ca_file)
        if server.tls_mode == "tls":
            return smtplib.SMTP_SSL(server.host, server.port, timeout=self.timeout,
                                    context=context)
        connection = smtplib.SMTP(server.host, server.port, timeout=self.timeout)
        if server.tls_mode == "starttls":
            try:
                connection.starttls(context=context)
            except BaseException:
                connection.close()
                raise
        return connection


def _no_smtputf8(where, message):
    unusual = ", ".join(a for a in _addresses(message) if not a.isascii())
    return SendResult("permanent", error=(
        f"The SMTP server at {where} does not offer SMTPUTF8, which an address with letters "
        f"beyond ASCII before the @ needs ({unusual}). Use a server that offers it, or give "
        "the user an address in ASCII."))


def _reply_result(code, reply, where=""):
    text = reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)
    error = truncate(f"SMTP {code}{where}: {' '.join(text.split())}", ERROR_TEXT_MAX_CHARS)
    return SendResult("permanent" if 500 <= code < 600 else "retryable", error=error)


class Email(Channel):
    name = "email"
    label = "Email"
    noun = "email"
    model = EmailSettings
    settings = (
        Setting("host", "SMTP host", clean_host, field_label="SMTP host",
                description="Your mail server or relay, e.g. smtp.example.com."),
        Setting("port", "port", clean_port, field_label="Port", default="587",
                render_kw={"inputmode": "numeric"}),
        Setting("tls_mode", "TLS mode", clean_tls_mode, kind="select", field_label="TLS mode",
                choices=TLS_MODE_LABELS, default="starttls", words=TLS_MODE_WORDS),
        Setting("username", "username", clean_username, required=False, field_label="Username",
                description="Leave empty if the server needs no login."),
        Setting("password", "password", clean_password, required=False, secret=True,
                kind="password", field_label="Password",
                description="Leave empty to keep the stored password."),
        Setting("from_address", "from address", clean_from_address, kind="email",
                field_label="From address",
                description="What users see as the sender, e.g. sendauth@example.com. The "
                            "server must allow sending from it."),
    )
    preference_description = "An email to the address you sign in with."
    page = Page(
        what="email",
        provider="The SMTP server",
        accepted_advice="Check that it arrived at {user.email}; if not, look in the spam folder.",
        refused_advice="Check the host, port, TLS mode, login and from address.",
        secret_word="password",
        enable_label="Enable email",
        enable_description="Email authentication requests to users who have email on in their "
                           "messaging preferences.",
    )
    client_class = Mailer

    def _server(self, settings):
        return Server(host=settings.host, port=settings.port, tls_mode=settings.tls_mode,
                      username=settings.username, password=self.secret(settings))

    def build(self, settings, transaction, link):
        return self._outgoing(settings, request_email, transaction=transaction, link=link,
                              sender=settings.from_address,
                              subject=message_templates.for_request("email_subject", transaction),
                              body=message_templates.for_request("email_body", transaction))

    def build_test(self, settings, sent_by):
        return self._outgoing(settings, test_email, sender=settings.from_address,
                              sent_by=sent_by,
                              settings_url=f"{self.config['BASE_URL']}/settings/email")

    def _outgoing(self, settings, write, **parts):
        """The message to send, or, when it cannot be written, why: a failed delivery."""
        server = self._server(settings)
        try:
            return Outgoing(server, write(**parts))
        except (ValueError, TypeError, LookupError, MessageError) as exc:
            return Outgoing(server, None, problem=(
                f"The email could not be written: {exc or exc.__class__.__name__}. Check the "
                "names and addresses of the user and the requestor, and the from address."))

    def build_notice(self, settings, user, notice):
        message = _message(sender=settings.from_address,
                           recipient=Address(user.name, addr_spec=user.email),
                           subject=notice.subject, text=notice.text + "\n",
                           html=f"<p>{escape(notice.text)}</p>")
        return Outgoing(self._server(settings), message)

    @staticmethod
    def secrets(prepared):
        return [prepared.server.password]
