"""No SSRF: a webhook goes only to a public address, the one that was checked."""
import socket

import pytest

from sendauth_dashboard.services.webhooks.guard import AddressRefused, check_url, resolve

# Names a hostile (or careless) DNS answers with internal addresses.
RESOLVES_TO = {
    "localhost.example": "127.0.0.1",
    "loopback-too.example": "127.8.9.10",
    "metadata.example": "169.254.169.254",
    "ten.example": "10.0.0.5",
    "office.example": "192.168.1.20",
    "docker.example": "172.17.0.1",
    "carrier-nat.example": "100.64.0.1",
    "zero.example": "0.0.0.0",
    "multicast.example": "224.0.0.251",
    "broadcast.example": "255.255.255.255",
    "v6-loopback.example": "::1",
    "v6-unique-local.example": "fd12:3456:789a::1",
    "v6-link-local.example": "fe80::1",
    "v6-mapped.example": "::ffff:127.0.0.1",
    "v6-unspecified.example": "::",
    "v6-multicast.example": "ff02::1",
    "benchmark.example": "198.18.0.1",
}
PUBLIC = {"tickets.example": "93.184.215.14",
          "v6.example": "2606:2800:21f:cb07:6820:80da:af6b:8b2c"}


def fake_getaddrinfo(answers):
    def getaddrinfo(host, port, type=0):
        if host not in answers:
            raise socket.gaierror(-2, "Name or service not known")
        addresses = answers[host] if isinstance(answers[host], list) else [answers[host]]
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, type, 6, "", (a, port))
                for a in addresses]
    return getaddrinfo


@pytest.mark.parametrize("name", sorted(RESOLVES_TO))
def test_a_name_that_resolves_to_an_internal_address_is_refused(name):
    with pytest.raises(AddressRefused, match="public addresses"):
        resolve(f"https://{name}/hook", False, fake_getaddrinfo(RESOLVES_TO))


@pytest.mark.parametrize("host", [
    "127.0.0.1", "[::1]", "169.254.169.254", "10.1.2.3", "[fd00::1]", "[::ffff:10.0.0.1]",
])
def test_an_internal_address_written_as_itself_is_refused_before_any_lookup(host):
    with pytest.raises(AddressRefused):
        check_url(f"https://{host}/hook", False)


@pytest.mark.parametrize("host", [
    "2130706433", "0x7f000001", "0x7f.0.0.1", "0177.0.0.1", "127.1", "127.0.1", "017700000001",
    "0x08.8.8.8", "8.8.8.010", "1.2.3.4.",
])
def test_ipv4_written_in_another_form_is_refused_even_where_private_networks_are_allowed(host):
    for allow in (False, True):
        with pytest.raises(AddressRefused, match="unusual form"):
            check_url(f"http://{host}/hook" if allow else f"https://{host}/hook", allow)


def test_one_internal_address_among_public_ones_refuses_the_name():
    answers = {"mixed.example": ["93.184.215.14", "10.0.0.1"]}
    with pytest.raises(AddressRefused, match="10.0.0.1"):
        resolve("https://mixed.example/", False, fake_getaddrinfo(answers))


def test_the_connection_goes_to_the_address_that_was_checked():
    target = resolve("https://tickets.example:8443/hooks/sendauth?x=1", False,
                     fake_getaddrinfo(PUBLIC))
    assert (target.address, target.host, target.port, target.path) == (
        "93.184.215.14", "tickets.example", 8443, "/hooks/sendauth?x=1")
    assert resolve("https://v6.example/", False, fake_getaddrinfo(PUBLIC)).address == \
        PUBLIC["v6.example"]


@pytest.mark.parametrize("url, words", [
    ("http://tickets.example/hook", "https:// only"),
    ("ftp://tickets.example/hook", "starts with https://"),
    ("https://user:pass@tickets.example/hook", "user name and password"),
    ("https:///nohost", "starts with https://"),
    ("https://tickets.example:99999/", "not a URL"),
])
def test_urls_that_are_not_https_to_a_host_are_refused(url, words):
    with pytest.raises(AddressRefused, match=words):
        check_url(url, False)


def test_private_networks_allowed_lets_a_local_receiver_in():
    target = resolve("http://localhost.example:8080/hook", True, fake_getaddrinfo(RESOLVES_TO))
    assert (target.scheme, target.address) == ("http", "127.0.0.1")


def test_a_name_that_does_not_resolve_is_refused_with_its_reason():
    with pytest.raises(AddressRefused, match="could not be resolved"):
        resolve("https://nowhere.example/", False, fake_getaddrinfo({}))
