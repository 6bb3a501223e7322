"""Every response carries the security headers: pages, error pages, static files, the live
stream and the JSON health check. The Content-Security-Policy allows no inline script, and no
template needs one. Over HTTPS: Secure cookies and Strict-Transport-Security."""
import re
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError

from sendauth_dashboard.extensions import db
from sendauth_dashboard.services.webhooks import endpoints, queue
from tests.support.helpers import answer_token, configure_pagerduty, every_get_url, send_request
from tests.support.web import AuthActions

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


@pytest.fixture
def app_config():
    return {"SSE_MAX_SECONDS": 0.0}


def policy(response):
    directives = {}
    for directive in response.headers["Content-Security-Policy"].split(";"):
        name, _, value = directive.strip().partition(" ")
        directives[name] = value
    return directives


def assert_security_headers(response, referrer_policy=("same-origin",)):
    csp = policy(response)
    assert csp["default-src"] == "'self'"
    assert csp["script-src"] == "'self'", "scripts only from our own files: no inline script"
    assert csp["style-src"] == "'self'"
    assert csp["frame-ancestors"] == "'none'"
    assert csp["object-src"] == "'none'" and csp["base-uri"] == "'none'"
    assert "unsafe-inline" not in str(csp) and "unsafe-eval" not in str(csp)
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] in referrer_policy


SCRIPT = re.compile(r"<script\b([^>]*)>(.*?)</script\s*>", re.I | re.S)
INLINE = [
    (re.compile(r"\son[a-z]+\s*=", re.I), "an on*= event handler"),
    (re.compile(r"\sstyle\s*=", re.I), "a style= attribute"),
    (re.compile(r"<style\b", re.I), "a <style> element"),
    (re.compile(r"javascript:", re.I), "a javascript: URL"),
]


def inline_code(html):
    """What in ``html`` the policy would block: inline script, handlers, inline styles."""
    found = [what for pattern, what in INLINE if pattern.search(html)]
    for attributes, body in SCRIPT.findall(html):
        if "src=" not in attributes or body.strip():
            found.append("an inline <script>")
    if len(SCRIPT.findall(html)) != len(re.findall(r"<script\b", html, re.I)):
        found.append("an unclosed <script>")
    return found


def test_the_inline_code_check_finds_what_the_policy_would_block():
    for sample in ('<script>alert(1)</script>', '<a onclick="x()">', '<p style="color:red">',
                   '<style>p{}</style>', '<a href="javascript:x()">',
                   '<script src=x>go()</script>', '<script src=x>'):
        assert inline_code(sample), sample
    assert inline_code('<script src="/static/js/live.js" defer></script>') == []


@pytest.mark.parametrize("template", sorted(p.relative_to(TEMPLATES).as_posix()
                                            for p in TEMPLATES.rglob("*.html")))
def test_no_template_has_inline_script_handlers_or_styles(template):
    assert inline_code((TEMPLATES / template).read_text()) == []


@pytest.fixture
def world(app, make_user):
    """Everything a page can show: PagerDuty set up, a pending transaction, its link."""
    configure_pagerduty(app)
    requestor = make_user("requestor")
    user = make_user("member", notify_pagerduty=True)
    public_id = send_request(app, requestor, user)
    with app.app_context():
        endpoint, _ = endpoints.create("https://tickets.example.com/hooks", "", ["user.created"],
                                       True, actor=None)
        db.session.flush()
        queue.queue_test(endpoint)
        db.session.commit()
        endpoint_id = endpoint.id
    return {"public_id": public_id, "token": answer_token(app, public_id), "user": user,
            "endpoint_id": endpoint_id}


@pytest.mark.parametrize("who", ["anonymous", "admin", "target"])
def test_every_page_has_the_headers_and_no_inline_code(app, make_user, world, who):
    client = app.test_client()
    if who == "admin":
        AuthActions(client).login(make_user("admin"))
    elif who == "target":
        AuthActions(client).login(world["user"])
    urls = every_get_url(app, public_id=world["public_id"], token=world["token"],
                         user_id=world["user"].id, endpoint_id=world["endpoint_id"],
                         group_id=1)
    assert "/transactions/stream" in urls and "/healthz" in urls and "/static/css/app.css" in urls
    for url in urls:
        response = client.get(url)
        response.close()
        on_answer_page = url.startswith(("/authenticate/", "/enrol/"))
        assert_security_headers(
            response, ("no-referrer",) if on_answer_page else ("same-origin",))
        if response.mimetype == "text/html":
            assert inline_code(response.text) == [], url


def raising(exc):
    def fail(*args, **kwargs):
        raise exc

    return fail


def test_every_error_page_has_the_headers(app, client, make_user, monkeypatch):
    from sendauth_dashboard.pages import main

    responses = [
        (404, client.get("/no/such/page")),
        (405, client.put("/login")),
        (400, client.post("/login", data={"email": "x"})),
        (413, client.post("/login", data={"email": "x" * 70_000})),
        (401, client.get("/transactions/stream")),
    ]
    member = app.test_client()
    AuthActions(member).login(make_user("member"))
    responses.append((403, member.get("/settings/users")))
    AuthActions(client).login(make_user("admin"))
    app.config["PROPAGATE_EXCEPTIONS"] = False
    for code, failure in ((500, RuntimeError("a bug")),
                          (503, OperationalError("SELECT 1", {}, Exception("gone")))):
        monkeypatch.setattr(main, "admin_checklist", raising(failure))
        responses.append((code, client.get("/")))
    for expected, response in responses:
        assert response.status_code == expected
        assert_security_headers(response)


def test_https_gets_strict_transport_security_and_plain_http_does_not(client):
    secure = client.get("/login", base_url="https://sendauth.test")
    assert secure.headers["Strict-Transport-Security"] == "max-age=31536000"
    assert "Strict-Transport-Security" not in client.get("/login").headers


@pytest.mark.parametrize("app_config", [{"BASE_URL": "https://sendauth.example"}])
def test_an_https_base_url_makes_the_session_cookie_secure_and_asks_for_https(app, client,
                                                                              make_user):
    response = AuthActions(client).login(make_user("member"))
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("session=")
    assert "; Secure" in cookie and "; HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000"


def test_an_http_base_url_keeps_the_cookie_usable_without_https(client, make_user):
    cookie = AuthActions(client).login(make_user("member")).headers["Set-Cookie"]
    assert "; HttpOnly" in cookie and "; Secure" not in cookie
