"""No SSRF: where a webhook may be sent.

A webhook URL is an address an admin typed, and the dashboard sits inside a network: without a
guard it would post to the cloud metadata service, a database's admin port or localhost. So the
host is resolved once, when sending; every address it resolves to must be public (not loopback,
private, link-local, multicast, unspecified, reserved, IPv6 unique-local or link-local, nor an
IPv4 address mapped into IPv6), and the connection goes to the address that was checked (no
second lookup that a rebinding DNS server could answer differently). A host written as an IPv4
address in another form (``2130706433``, ``0x7f.1``, ``0177.0.0.1``, ``127.1``) is refused
outright: resolvers read those forms differently. ``https://`` only, unless
WEBHOOKS_ALLOW_PRIVATE_NETWORKS (tests, a development receiver) allows plain http and every
address.
"""
import ipaddress
import re
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

_NUMERIC_HOST = re.compile(r"^(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]*))*\.?$", re.IGNORECASE)


class AddressRefused(Exception):
    """The URL may not be sent to; the message says why, for the admin."""


@dataclass(frozen=True)
class Target:
    """Where to connect: the checked address, and the URL's own host (for TLS and Host)."""

    scheme: str
    host: str
    address: str
    port: int
    path: str


def check_url(url, allow_private):
    """Refuse what can never be sent to (the scheme, the host's form), without resolving: the
    check made when an admin saves an endpoint. Returns the parsed URL."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise AddressRefused("This is not a URL: write it as https://host/path.") from None
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise AddressRefused("A webhook URL starts with https:// and names a host.")
    if parts.scheme == "http" and not allow_private:
        raise AddressRefused("Webhooks go over https:// only (their payloads name people).")
    if parts.username or parts.password:
        raise AddressRefused("Leave the user name and password out of the URL.")
    host = parts.hostname
    if _NUMERIC_HOST.match(host) and not _is_dotted_quad(host):
        raise AddressRefused(f"{host} is an IPv4 address written in an unusual form; write it "
                             "as four decimal numbers (or use the host's name).")
    if not allow_private:
        try:
            _refuse_internal(ipaddress.ip_address(host.strip("[]")), host)
        except ValueError:
            pass  # a name: checked once resolved
    return parts, port


def resolve(url, allow_private, getaddrinfo=None):
    """The Target to connect to for ``url``: every address the host resolves to checked, the
    first one used. AddressRefused when any is internal, or none."""
    parts, port = check_url(url, allow_private)
    port = port or (443 if parts.scheme == "https" else 80)
    try:
        found = (getaddrinfo or socket.getaddrinfo)(parts.hostname, port,
                                                    type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise AddressRefused(f"{parts.hostname} could not be resolved ({exc}).") from None
    addresses = [info[4][0] for info in found]
    if not addresses:
        raise AddressRefused(f"{parts.hostname} resolves to no address.")
    if not allow_private:
        for address in addresses:
            _refuse_internal(ipaddress.ip_address(address.split("%")[0]), parts.hostname)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(parts.scheme, parts.hostname, addresses[0], port, path)


def _is_dotted_quad(host):
    numbers = host.split(".")
    return len(numbers) == 4 and all(n.isdigit() and str(int(n)) == n and int(n) < 256
                                     for n in numbers)


def _refuse_internal(ip, host):
    mapped = getattr(ip, "ipv4_mapped", None)
    if mapped is not None:
        ip = mapped
    reason = next((words for test, words in _INTERNAL if test(ip)), None)
    if reason is None and not ip.is_global:
        reason = "not a public address"
    if reason:
        shown = host if host == str(ip) else f"{host} ({ip})"
        raise AddressRefused(f"{shown} is {reason}: webhooks go only to public addresses.")


_INTERNAL = (
    (lambda ip: ip.is_loopback, "a loopback address"),
    (lambda ip: ip.is_unspecified, "the unspecified address"),
    (lambda ip: ip.is_link_local, "a link-local address (the cloud metadata service among them)"),
    (lambda ip: ip.is_multicast, "a multicast address"),
    (lambda ip: ip.is_private, "a private address"),
    (lambda ip: ip.is_reserved, "a reserved address"),
)
