"""A real SMTP server on 127.0.0.1 (aiosmtpd) that keeps what it receives and can refuse.

It speaks plain SMTP, STARTTLS or TLS from the start with a certificate made for the test,
checks a login when given one, offers SMTPUTF8 when told to, and can be told to answer a
recipient or the message with a reply code of the test's choosing (``550 5.1.1 ...``,
``451 4.3.0 ...``).

Every message is read with the standard library's parser (``policy.default``; an SMTPUTF8
message as UTF-8, RFC 6532) and refused with ``554 5.6.0`` when the parser finds any defect
in it, its headers or its parts; the defects are kept in ``defects``.
"""
import datetime
import email
import ipaddress
import ssl
import threading
from collections import deque
from dataclasses import dataclass
from email import errors, policy

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list
    message: email.message.EmailMessage
    login: str | None

    def body(self, subtype="plain"):
        return self.message.get_body((subtype,)).get_content()


def make_certificate(directory):
    """A self-signed certificate for 127.0.0.1; returns (cert file, key file)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake smtp for tests")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "smtp-cert.pem", directory / "smtp-key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


class _Controller(Controller):
    """Listens on a port the system picks (port 0), then connects to the one it got."""

    def _trigger_server(self):
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


def parse(content, smtputf8=False):
    """The message as the standard library reads it, and every defect it found."""
    if smtputf8:
        message = email.message_from_string(content.decode("utf-8"), policy=policy.default)
    else:
        message = email.message_from_bytes(content, policy=policy.default)
    defects = []
    for part in message.walk():
        defects += [f"{part.get_content_type()}: {d!r}" for d in part.defects]
        for name, value in part.items():
            defects += [f"{name}: {d!r}" for d in getattr(value, "defects", ())
                        # RFC 6532 allows what RFC 5322 calls this defect.
                        if not (smtputf8 and isinstance(d, errors.NonASCIILocalPartDefect))]
    return message, defects


class FakeSmtp:
    def __init__(self, tls_mode="none", certificate=None, login=None, smtputf8=False):
        # login: (username, password) the server insists on, or None for no AUTH at all.
        self.tls_mode = tls_mode
        self.certificate = certificate
        self.login = login
        self.smtputf8 = smtputf8
        self.received = []
        self.defects = []
        self.logins = []
        self._rcpt_replies = deque()
        self._data_replies = deque()
        self._lock = threading.Condition()
        self._controller = None

    # -- control --------------------------------------------------------------------------
    def start(self):
        options = {"server_hostname": "fake-smtp.test", "enable_SMTPUTF8": self.smtputf8}
        if self.tls_mode != "none":
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(*self.certificate)
            options["ssl_context" if self.tls_mode == "tls" else "tls_context"] = context
            options["require_starttls"] = self.tls_mode == "starttls"
        if self.login:
            options["authenticator"] = self._authenticate
            # aiosmtpd sees only STARTTLS as TLS; from the start, the whole session is TLS.
            options["auth_require_tls"] = options["auth_required"] = self.tls_mode != "tls"
        self._controller = _Controller(self, hostname="127.0.0.1", port=0, **options)
        self._controller.start()
        return self

    def stop(self):
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    @property
    def port(self):
        return self._controller.port

    def refuse_next_recipient(self, reply):
        """The next RCPT TO gets ``reply``, e.g. ``550 5.1.1 <x@example.com>: User unknown``."""
        with self._lock:
            self._rcpt_replies.append(reply)

    def refuse_next_message(self, reply):
        """The next message (after DATA) gets ``reply``, e.g. ``451 4.3.0 Try again later``."""
        with self._lock:
            self._data_replies.append(reply)

    def wait_for(self, predicate, timeout=10.0):
        with self._lock:
            if not self._lock.wait_for(lambda: predicate(self), timeout):
                raise AssertionError(f"fake SMTP: condition not met within {timeout} s; "
                                     f"received {len(self.received)} messages")

    # -- aiosmtpd handler hooks ------------------------------------------------------------
    def _authenticate(self, server, session, envelope, mechanism, auth_data):
        login = (auth_data.login.decode(), auth_data.password.decode())
        with self._lock:
            self.logins.append(login[0])
        return AuthResult(success=login == self.login, handled=False, auth_data=auth_data)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        with self._lock:
            reply = self._rcpt_replies.popleft() if self._rcpt_replies else None
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self._lock:
            reply = self._data_replies.popleft() if self._data_replies else None
            if reply:
                return reply
            message, defects = parse(envelope.content, envelope.smtp_utf8)
            if defects:
                self.defects.append(defects)
                self._lock.notify_all()
                return f"554 5.6.0 Message has defects: {'; '.join(defects)}"[:500]
            login = session.auth_data.login.decode() if session.auth_data else None
            self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos),
                                          message, login))
            self._lock.notify_all()
        return "250 2.0.0 Message accepted for delivery"
