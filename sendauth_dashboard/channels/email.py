"""Email through the organisation's SMTP server: settings, messages, and what the server said.

A reply code 5xx means the server will never take the message (unknown recipient, refused
login): permanent. 4xx, a dropped connection or a timeout may pass later: retryable. Errors
carry the server's own reply text.
"""
import re
import smtplib
import ssl
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from html import escape

from email_validator import EmailNotValidError, validate_email

from ..models import EmailSettings
from .base import Channel, Page
from .http import ERROR_TEXT_MAX_CHARS, SendResult, truncate
from .integration import Setting

TLS_MODE_LABELS = {
    "starttls": "STARTTLS: plain connection upgraded to TLS (usually port 587)",
    "tls": "TLS from the start, also called SMTPS (usually port 465)",
    "none": "None: no encryption (only for a relay on a network you trust)",
}
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
    message: EmailMessage


def _message(*, sender, recipient, subject, text, html):
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = Address(SENDER_NAME, addr_spec=sender)
    message["To"] = recipient
    message["Date"] = format_datetime(datetime.now(timezone.utc))
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2])
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    return message


def request_email(*, transaction, link, sender):
    """The email for an authentication request: who asks, their message and context, the link."""
    requestor, user = transaction.requestor, transaction.user
    expires = transaction.expires_at.strftime("%Y-%m-%d %H:%M UTC")
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
    context = (f"<p><strong>Context:</strong> {escape(transaction.context)}</p>"
               if transaction.context else "")
    html = (
        f"<p>{escape(requestor.name)} ({escape(requestor.email)}) asks you to confirm that it "
        "is really you.</p>"
        f"<p><strong>Message:</strong> {escape(transaction.message)}</p>{context}"
        f'<p><a href="{escape(link)}">Verify or deny</a></p>'
        f"<p>The link works once and expires at {expires}. If you did not expect this "
        "request, choose deny.</p>"
    )
    return _message(sender=sender, recipient=Address(user.name, addr_spec=user.email),
                    subject=f"Authentication request from {requestor.name}",
                    text="\n".join(lines) + "\n", html=html)


def test_email(*, sender, sent_by, settings_url):
    text = (f"A test message from SendAuth's email settings, sent by {sent_by.name}. "
            "Authentication requests will arrive like this. Nobody needs to do anything.\n\n"
            f"Email settings: {settings_url}\n")
    html = (f"<p>A test message from SendAuth's email settings, sent by "
            f"{escape(sent_by.name)}. Authentication requests will arrive like this. Nobody "
            f'needs to do anything.</p><p><a href="{escape(settings_url)}">Email settings</a></p>')
    return _message(sender=sender, recipient=Address(sent_by.name, addr_spec=sent_by.email),
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
        server, message = outgoing.server, outgoing.message
        where = f"{server.host}:{server.port}"
        try:
            with self._connect(server) as connection:
                if server.username:
                    connection.login(server.username, server.password or "")
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
                choices=TLS_MODE_LABELS, default="starttls"),
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
                      username=settings.username, password=self.secret())

    def build(self, settings, transaction, link):
        message = request_email(transaction=transaction, link=link,
                                sender=settings.from_address)
        return Outgoing(self._server(settings), message)

    def build_test(self, settings, sent_by):
        message = test_email(sender=settings.from_address, sent_by=sent_by,
                             settings_url=f"{self.config['BASE_URL']}/settings/email")
        return Outgoing(self._server(settings), message)

    def build_notice(self, settings, user, notice):
        message = _message(sender=settings.from_address,
                           recipient=Address(user.name, addr_spec=user.email),
                           subject=notice.subject, text=notice.text + "\n",
                           html=f"<p>{escape(notice.text)}</p>")
        return Outgoing(self._server(settings), message)

    @staticmethod
    def secrets(prepared):
        return [prepared.server.password]
