"""Secrets stay secret across a whole working day: an admin saves the integration key and tests
it (PagerDuty's error text echoing the key), a requestor sends a request, the dispatcher sends
it (a 500 echoing the key, then success), the user answers through their link. After that no
page, log record (captured at DEBUG), live-stream message, event row, or byte of the database at
rest holds a credential: the integration key, the answer token, a password or its hash, the
secret key or the encryption key derived from it."""
import json
import logging
import re
import secrets
from datetime import timedelta

import pytest
import requests
from sqlalchemy import select, update

from sendauth_dashboard.core.secrets import decrypt, derive_key
from sendauth_dashboard.extensions import db
from sendauth_dashboard.models import (
    Delivery,
    Event,
    Transaction,
    User,
    WebhookEndpoint,
    utcnow,
)
from sendauth_dashboard.services.outbox.dispatcher import Dispatcher
from tests.support import servers
from tests.support.accounts import PASSWORD, create_user
from tests.support.helpers import (
    TEST_KEY,
    answer_token,
    configure_pagerduty,
    database_at_rest,
    every_get_url,
    send_request,
    verify_form,
)
from tests.support.sse import ClientStream
from tests.support.web import AuthActions, csrf_token_from

from .fakes.pagerduty import Answer


@pytest.fixture
def app_config(fake_pagerduty):
    return {"PAGERDUTY_EVENTS_URL": fake_pagerduty.url, "PAGERDUTY_READ_TIMEOUT": 0.5,
            "SSE_HEARTBEAT_SECONDS": 0.05, "SSE_MAX_SECONDS": 10.0}


def browser(app, user):
    client = app.test_client()
    AuthActions(client).login(user)
    return client


def dispatch_everything_due(app):
    """Send what is queued now, and again once any retry would be due."""
    Dispatcher(app).run_until_idle()
    with app.app_context():
        db.session.execute(update(Delivery).where(Delivery.status == "queued")
                           .values(next_attempt_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    Dispatcher(app).run_until_idle()


SSO_CLIENT_SECRET = "sso-client-secret-of-the-day-7Hq2"


@pytest.fixture
def identity_provider():
    from tests.support.identity_provider import identity_provider

    with identity_provider() as provider:
        yield provider


@pytest.fixture
def day(app, make_user, fake_pagerduty, identity_provider):
    """Runs the day; returns the people, the answer link's token and what must stay secret."""
    people = {"admin": make_user("admin"), "requestor": make_user("requestor"),
              "reviewer": make_user("reviewer"),
              "user": make_user("member", notify_pagerduty=True)}

    def run():
        admin = browser(app, people["admin"])
        AuthActions(admin).post("/settings/pagerduty", {
            "enabled": "y", "integration_key": f"  {TEST_KEY}\n", "severity": "error"})
        fake_pagerduty.answer_next(Answer(400, f"Unknown routing key {TEST_KEY}",
                                          content_type="text/plain"))
        AuthActions(admin).post("/settings/pagerduty/test")
        AuthActions(admin).post("/settings/pagerduty/test")

        requestor = browser(app, people["requestor"])
        sent = AuthActions(requestor).post("/transactions/new", {
            "user": people["user"].email, "message": "Confirm the laptop swap",
            "context": "INC-77"})
        assert sent.status_code == 302
        fake_pagerduty.answer_next(Answer(500, f"Backend error for {TEST_KEY}",
                                          content_type="text/plain"))
        dispatch_everything_due(app)
        link = fake_pagerduty.accepted[-1]["links"][0]["href"]
        token = link.rsplit("/", 1)[1]

        user = app.test_client()
        assert user.get(f"/authenticate/{token}").status_code == 200  # signed out: the passkey
        answered = user.post(f"/authenticate/{token}",
                              data=verify_form(app, user, token, people["user"]))
        assert answered.status_code == 200
        AuthActions(admin).post("/settings/sign-in", {
            "oidc_issuer": identity_provider.url, "oidc_client_id": "sendauth",
            "oidc_client_secret": SSO_CLIENT_SECRET, "oidc_allowed_domains": "example.com"},
            token_page="/settings/sign-in")
        identity_provider.person(people["reviewer"].email)
        reviewer = app.test_client()
        started = reviewer.get("/login/oidc").headers["Location"]
        back = identity_provider.authorize(started, people["reviewer"].email)
        assert reviewer.get(back.split("sendauth.test", 1)[1]).status_code == 302
        hooks = "/settings/webhooks"
        assert AuthActions(admin).post(hooks, {
            "url": "https://tickets.example.com/hooks", "events": ["transaction.verified"],
            "enabled": "y"}, token_page=hooks).status_code == 200
        AuthActions(admin).post(f"{hooks}/1/rotate", token_page=f"{hooks}/1")
        AuthActions(admin).post(f"{hooks}/1/test", token_page=f"{hooks}/1")
        return token

    return people, run


def credentials(app, token):
    """Every credential this branch stores or uses, by name."""
    found = {"integration key": TEST_KEY, "answer token": token, "password": PASSWORD,
             "single sign-on client secret": SSO_CLIENT_SECRET,
             "secret key": app.config["SECRET_KEY"],
             "encryption key": derive_key(app.config["SECRET_KEY"]).decode()}
    with app.app_context():
        for email, hashed in db.session.execute(select(User.email, User.password_hash)):
            found[f"password hash of {email}"] = hashed
        for endpoint in db.session.scalars(select(WebhookEndpoint)):
            found[f"webhook secret of {endpoint.url}"] = decrypt(endpoint.secret_ciphertext)
            found[f"old webhook secret of {endpoint.url}"] = decrypt(
                endpoint.previous_secret_ciphertext)
    return found


def leaks(text, found, skip=()):
    return sorted(name for name, secret in found.items()
                  if name not in skip and secret in text)


def test_no_log_record_holds_a_credential(app, day, caplog):
    caplog.set_level(logging.DEBUG)
    _, run = day
    token = run()
    found = credentials(app, token)
    assert caplog.records, "the day logs something"
    assert leaks(caplog.text, found) == []
    for record in caplog.records:
        assert leaks(repr(record.__dict__), found) == [], record.getMessage()


def test_no_page_shows_a_credential(app, day):
    people, run = day
    token = run()
    found = credentials(app, token)
    with app.app_context():
        public_id = db.session.scalar(select(Transaction.public_id))
    urls = every_get_url(app, public_id=public_id, token=token, user_id=people["user"].id,
                         endpoint_id=1, group_id=1)
    app.config["SSE_MAX_SECONDS"] = 0.0  # the stream's replay, then its end
    for who in ("admin", "requestor", "reviewer", "user", None):
        client = browser(app, people[who]) if who else app.test_client()
        for url in urls:
            response = client.get(url)
            body = response.get_data(as_text=True)
            response.close()
            # The link's own page is where its holder already is: it may name its address.
            skip = ("answer token",) if url.startswith("/authenticate/") else ()
            assert leaks(body, found, skip) == [], f"{url} as {who or 'a visitor'}"
            assert leaks(json.dumps(dict(response.headers)), found, skip) == [], url
    admin = browser(app, people["admin"])
    page = admin.get("/settings/pagerduty").text
    assert "Unknown routing key " + "•" * 28 + TEST_KEY[-4:] in page, "the echo shows masked"


def test_no_live_message_or_event_row_holds_a_credential(app, day):
    people, run = day
    stream = ClientStream(browser(app, people["reviewer"]), "/transactions/stream")
    token = run()
    stream.read_until(lambda s: any(e["kind"] == "transaction.verified" for e in s.events))
    stream.close()
    found = credentials(app, token)
    kinds = {e["kind"] for e in stream.events}
    assert {"delivery.retrying", "delivery.sent"} <= kinds, "the echoed error went live too"
    assert leaks(json.dumps(stream.events) + json.dumps(stream.comments), found) == []
    with app.app_context():
        rows = db.session.scalars(select(Event)).all()
        assert {"settings.pagerduty_tested", "delivery.retrying"} <= {e.kind for e in rows}
        for event in rows:
            assert leaks(json.dumps(event.data), found) == [], event.kind


def test_the_database_at_rest_holds_no_credential_in_plain_text(app, day):
    _, run = day
    token = run()
    found = credentials(app, token)
    with app.app_context():
        assert db.session.scalars(select(Delivery.link_ciphertext)).all() == [None], \
            "once sent, the link is not kept even encrypted"
    raw = database_at_rest(app)
    stored = [name for name, secret in found.items()
              if not name.startswith("password hash") and secret.encode() in raw]
    assert stored == []
    assert b"Unknown routing key" in raw and b"Backend error for" in raw, "read what was written"


def test_a_database_error_names_no_value_it_was_given(app):
    """Such an error is logged with its traceback when a request fails."""
    from sqlalchemy import text
    from sqlalchemy.exc import SQLAlchemyError

    with app.app_context():
        with pytest.raises(SQLAlchemyError) as failure:
            db.session.execute(text("SELECT password_hash FROM no_such_table WHERE x = :hash"),
                               {"hash": "pbkdf2:sha256:1000$salt$0123abcd"})
        db.session.rollback()
    assert "no_such_table" in str(failure.value)
    assert "0123abcd" not in str(failure.value)


# -- answer tokens ----------------------------------------------------------------------------

def create_people(app):
    """A requestor and the member they ask, made in ``app`` (a served one)."""
    return {role: create_user(app, role, email, notify_pagerduty=True)
            for role, email in (("requestor", "hana@example.com"), ("member", "uma@example.com"))}


TOKEN_IN_A_LINE = re.compile(r"authenticate(/|%2F)(?!\[token\])[A-Za-z0-9_\-]{20,}", re.I)


def test_the_served_app_logs_requests_with_the_token_masked(live_server, fake_pagerduty, caplog):
    """Through real HTTP: the link, the sign-in it leads to, and the answer."""
    caplog.set_level(logging.INFO)
    app = live_server.app
    configure_pagerduty(app)
    people = create_people(app)
    session = requests.Session()
    url = live_server.url

    def sign_in(email, path="/login"):
        token = csrf_token_from(session.get(url + path, timeout=10).text)
        return session.post(url + path, data={"email": email, "password": PASSWORD,
                                              "csrf_token": token}, timeout=10)

    sign_in(people["requestor"].email)
    csrf = csrf_token_from(session.get(f"{url}/transactions/new", timeout=10).text)
    session.post(f"{url}/transactions/new", timeout=10, data={
        "csrf_token": csrf, "user": people["member"].email, "message": "Confirm the laptop swap"})
    fake_pagerduty.wait_for(lambda fake: fake.accepted)
    link = fake_pagerduty.accepted[-1]["links"][0]["href"]
    token = link.rsplit("/", 1)[1]
    session.post(f"{url}/logout", data={"csrf_token": csrf}, timeout=10)

    assert session.get(link, timeout=10).status_code == 200  # signed out, the answer page
    assert session.get(f"{link}/status", timeout=10).status_code == 204  # a page left open
    answer_page = sign_in(people["member"].email, f"/login?next=/authenticate/{token}")
    assert answer_page.url == link
    answered = session.post(link, timeout=10, data={
        "decision": "deny", "csrf_token": csrf_token_from(answer_page.text)})
    assert "You denied the request" in answered.text

    lines = [r.getMessage() for r in caplog.records if r.name == "werkzeug"]
    assert any("GET /authenticate/[token]" in line for line in lines), lines
    assert any("GET /authenticate/[token]/status" in line for line in lines), lines
    assert any("POST /login?next=/authenticate/[token]" in line for line in lines), lines
    assert not [line for line in lines if token in line or TOKEN_IN_A_LINE.search(line)]
    assert token not in caplog.text


def test_gunicorns_access_log_has_the_token_masked(tmp_path):
    token = secrets.token_urlsafe(32)
    server = servers.gunicorn(servers.environment(tmp_path), tmp_path, workers=1)
    try:
        for path in (f"/authenticate/{token}", f"/login?next=%2Fauthenticate%2F{token}",
                     f"/login?next=/authenticate/{token}"):
            requests.get(server.url + path, timeout=10, allow_redirects=False,
                         headers={"Referer": f"{server.url}/authenticate/{token}"})
    finally:
        server.stop()
    log = server.log()
    assert log.count("authenticate/[token]") + log.count("authenticate%2F[token]") >= 3, log
    assert token not in log


def test_a_crash_on_the_answer_page_logs_no_token(app, client, make_user, monkeypatch, caplog):
    """Flask logs the address of a request that failed: the token is masked there too."""
    from sendauth_dashboard.services.requests import transactions

    configure_pagerduty(app)
    requestor, user = make_user("requestor"), make_user("member", notify_pagerduty=True)
    token = answer_token(app, send_request(app, requestor, user))
    AuthActions(client).login(user)
    app.config["PROPAGATE_EXCEPTIONS"] = False

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(transactions, "find_by_token", broken)
    caplog.set_level(logging.DEBUG)
    assert client.get(f"/authenticate/{token}").status_code == 500
    assert "Exception on /authenticate/[token] [GET]" in caplog.text
    assert token not in caplog.text


def test_the_answer_page_sends_nothing_that_could_carry_its_address_elsewhere(app, client,
                                                                              make_user):
    configure_pagerduty(app)
    requestor, user = make_user("requestor"), make_user("member", notify_pagerduty=True)
    token = answer_token(app, send_request(app, requestor, user))
    AuthActions(client).login(user)
    response = client.get(f"/authenticate/{token}")
    assert response.status_code == 200
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["Cache-Control"] == "no-store"
    addresses = re.findall(r'(?:src|href|action)="([^"]*)"', response.text)
    # Paths on this site, or a place on this page (the skip link's "#main"), nothing else.
    assert addresses and all((a.startswith("/") and not a.startswith("//")) or a.startswith("#")
                             for a in addresses)


@pytest.mark.browser
def test_a_browser_on_the_answer_page_sends_its_address_to_no_one(browser, live_server,
                                                                   fake_pagerduty):
    """Chromium, signed in through the link: the answer page's own requests carry no Referer,
    where the sign-in page's do (so the check can see one)."""
    app = live_server.app
    configure_pagerduty(app)
    people = create_people(app)
    send_request(app, people["requestor"], people["member"])
    fake_pagerduty.wait_for(lambda fake: fake.accepted)
    link = fake_pagerduty.accepted[-1]["links"][0]["href"]
    page = browser.new_context().new_page()
    seen = []
    page.on("request", lambda request: seen.append((page.url, request)))
    page.goto(f"{live_server.url}/login?next=/authenticate/{link.rsplit('/', 1)[1]}")
    page.get_by_label("Email").fill(people["member"].email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(link)
    page.wait_for_load_state("networkidle")
    from_answer = [r for url, r in seen if url == link and "/static/" in r.url]
    from_sign_in = [r for url, r in seen if "/login" in url and "/static/" in r.url]
    assert from_answer and from_sign_in
    assert [r.header_value("referer") for r in from_answer] == [None] * len(from_answer)
    assert all(r.header_value("referer") for r in from_sign_in)
    page.context.close()


def test_the_log_filter_masks_what_an_access_log_format_prints():
    """gunicorn's atoms (SafeAtoms: headers as ``{name}i``, looked up in lower case); only the
    printed ones are looked at, each masked, whatever the format names."""
    from gunicorn.glogging import SafeAtoms

    from sendauth_dashboard.security import RedactTokens

    token = secrets.token_urlsafe(32)
    atoms = SafeAtoms({"h": "127.0.0.1", "r": f"GET /authenticate/{token} HTTP/1.1",
                       "{referer}i": f"http://x/enrol/{token}", "s": 200})
    record = logging.LogRecord("gunicorn.access", logging.INFO, __file__, 1,
                               '%(h)s "%(r)s" %(s)s %({Referer}i)s', (atoms,), None)
    RedactTokens().filter(record)
    line = record.getMessage()
    assert token not in line
    assert line == ('127.0.0.1 "GET /authenticate/[token] HTTP/1.1" 200 '
                    "http://x/enrol/[token]")
