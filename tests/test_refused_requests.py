"""Requests refused before they do anything: a POST without this session's CSRF token gets
400, a body over MAX_CONTENT_LENGTH (64 KiB) gets 413, each with the styled error page.
Every POST route of the app is tried, read from its URL map, so a new route is covered too."""
import io
from urllib.parse import urlencode

import pytest
import requests

from sendauth_dashboard import channels
from sendauth_dashboard.extensions import db
from tests.support.accounts import PASSWORD
from tests.support.helpers import (
    OTHER_TEST_KEY,
    answer_token,
    configure_pagerduty,
    database_rows,
    passkey_ids,
    send_request,
)
from tests.support.web import AuthActions, csrf_token_from

LIMIT = 64 * 1024


def routing_rule_id(app, user):
    from sendauth_dashboard.services.approvals import tag_rules

    with app.app_context():
        rule = tag_rules.add(tag_key="team", tag_value="help", user_email=user.email, actor=None)
        db.session.commit()
        return rule.id


def webhook_ids(app):
    """A webhook endpoint and one message queued for it."""
    from sendauth_dashboard.services.webhooks import endpoints, queue

    with app.app_context():
        endpoint, _ = endpoints.create("https://tickets.example.com/hooks", "", ["user.created"],
                                       True, actor=None)
        db.session.flush()
        message = queue.queue_test(endpoint)
        db.session.commit()
        return {"endpoint_id": endpoint.id, "message_id": message.id, "delivery_id": message.id}


@pytest.fixture
def world(app, make_user):
    """A transaction from a requestor to a member, and a signed-in admin's browser."""
    configure_pagerduty(app)
    requestor = make_user("requestor")
    member = make_user("member", notify_pagerduty=True)
    public_id = send_request(app, requestor, member)
    admin = app.test_client()
    AuthActions(admin).login(make_user("admin"))
    return {
        "arguments": {"user_id": member.id, "public_id": public_id,
                      "token": answer_token(app, public_id),
                      "passkey_id": passkey_ids(app, member)[0],
                      "key_id": api_key_id(app, requestor), **webhook_ids(app),
                      "rule_id": routing_rule_id(app, member), "field_name": "sms_body",
                      "group_id": 1},
        # Every field any form has, with values that would be accepted: only the missing
        # token (or the size) may stop them.
        "form": {"email": "new.person@example.com", "name": "New Person", "password": PASSWORD,
                 "role": "admin", "active": "0", "enabled": "y", "severity": "info",
                 "integration_key": OTHER_TEST_KEY, "pagerduty": "y", "user": member.email,
                 "message": "Please confirm", "context": "INC-1", "decision": "verify"},
        "admin": admin,
    }


def post_urls(app, arguments):
    urls = []
    with app.test_request_context():
        from flask import url_for

        for rule in app.url_map.iter_rules():
            if "POST" not in rule.methods:
                continue
            # A rule that names a channel: once for each channel, with its secret's word.
            each = [{"name": cls.name, "secret_word": cls.page.secret_word}
                    for cls in channels.REGISTRY.values()] if "name" in rule.arguments else [{}]
            for values in each:
                values = {**arguments, **values}
                missing = rule.arguments - set(values)
                assert not missing, f"no value for {sorted(missing)} of {rule.rule}"
                urls.append(url_for(rule.endpoint, **{a: values[a] for a in rule.arguments}))
    assert len(urls) >= 10
    return sorted(urls)


# Posted by a provider, not a browser: a signature stands in for the CSRF token
# (tests/test_pagerduty_webhooks.py).
SIGNED_NOT_FORMS = ("/webhooks/pagerduty",)
# The API and SCIM take no form and no session, only a bearer token: a browser's form is
# refused 401 whatever its token (tests/test_api.py, tests/test_scim.py).
API = ("/api/", "/scim/")


def api_key_id(app, user):
    from sendauth_dashboard.extensions import db
    from sendauth_dashboard.models import ApiKey
    from tests.support.api import make_key

    make_key(app, user)
    with app.app_context():
        return db.session.scalar(db.select(ApiKey.id).where(ApiKey.user_id == user.id))


def test_every_post_route_refuses_a_missing_or_foreign_csrf_token_with_400(app, world):
    admin, anonymous = world["admin"], app.test_client()
    tokens = {
        "admin": csrf_token_from(admin.get("/").text),
        "anonymous": csrf_token_from(anonymous.get("/login").text),
    }
    for url in post_urls(app, world["arguments"]):
        if url in SIGNED_NOT_FORMS:
            continue
        if url.startswith(API):
            assert admin.post(url, data={**world["form"], "csrf_token": tokens["admin"]}) \
                .status_code == 401, url
            continue
        for who, client in (("admin", admin), ("anonymous", anonymous)):
            foreign = tokens["anonymous" if who == "admin" else "admin"]
            for case, token in (("missing", None), ("foreign", foreign), ("empty", ""),
                                ("made up", "ImFiYyI.x.y")):
                before = database_rows(app)
                form = dict(world["form"])
                if token is not None:
                    form["csrf_token"] = token
                response = client.post(url, data=form)
                where = f"POST {url} as {who} with a {case} token"
                assert response.status_code == 400, where
                assert "Form expired or not from this site" in response.text, where
                assert database_rows(app) == before, where
    assert admin.get("/settings/users").status_code == 200, "the admin is still signed in"


def bodies_over_the_limit(form, token):
    """The form with its token and 64 KiB more: as fields, and as a file upload."""
    yield "form", {**form, "csrf_token": token, "padding": "x" * LIMIT}
    yield "multipart", {**form, "csrf_token": token,
                        "attachment": (io.BytesIO(b"x" * LIMIT), "big.txt")}


def test_every_post_route_refuses_a_body_over_64_kib_with_413(app, world):
    admin = world["admin"]
    token = csrf_token_from(admin.get("/").text)
    for url in post_urls(app, world["arguments"]):
        for kind, body in bodies_over_the_limit(world["form"], token):
            before = database_rows(app)
            response = admin.post(url, data=body)
            where = f"POST {url} with a {kind} body over 64 KiB"
            assert response.status_code == 413, where
            if url.startswith(API):
                assert str(response.json["status"]) == "413", where  # SCIM's is a string
            else:
                assert "What you sent is too large" in response.text, where
                assert '<p class="error-code">413</p>' in response.text, where
            assert database_rows(app) == before, where


def test_a_body_just_under_the_limit_is_read_as_usual(client):
    token = csrf_token_from(client.get("/login").text)
    body = {"csrf_token": token, "email": "nobody@example.com", "password": "wrong"}
    body["padding"] = "x" * (LIMIT - 200)
    response = client.post("/login", data=body)
    assert response.status_code == 200
    assert "Email or password is incorrect." in response.text


def chunks(data, size=8192):
    for start in range(0, len(data), size):
        yield data[start:start + size]


def test_a_streamed_body_without_a_length_is_held_to_the_same_limit(live_server):
    """Chunked transfer encoding sends no Content-Length: the server must count, not trust."""
    session = requests.Session()
    url = live_server.url
    token = csrf_token_from(session.get(f"{url}/login", timeout=10).text)
    form = "application/x-www-form-urlencoded"
    big = urlencode({"csrf_token": token, "email": "a@example.com", "password": "x",
                     "padding": "x" * LIMIT}).encode()
    response = session.post(f"{url}/login", data=chunks(big), timeout=10,
                            headers={"Content-Type": form})
    assert response.request.headers.get("Transfer-Encoding") == "chunked"
    assert response.status_code == 413
    assert "What you sent is too large" in response.text
    with live_server.app.app_context():
        from sendauth_dashboard.extensions import db
        from sendauth_dashboard.services.people import accounts

        accounts.create_user(email="chunky@example.com", name="Chunky", role="member",
                             password=PASSWORD)
        db.session.commit()
    small = urlencode({"csrf_token": token, "email": "chunky@example.com",
                       "password": PASSWORD}).encode()
    response = session.post(f"{url}/login", data=chunks(small, 16), timeout=10,
                            headers={"Content-Type": form}, allow_redirects=False)
    assert response.status_code == 302, "a small streamed form is read whole"


@pytest.mark.parametrize("where", ["path", "query", "form field", "form name"])
def test_a_nul_character_anywhere_is_a_400_that_says_so(app, world, where):
    """PostgreSQL cannot hold a NUL; it is refused at the door, the same on every database."""
    admin = world["admin"]
    token = csrf_token_from(admin.get("/").text)
    before = database_rows(app)
    if where == "path":
        response = admin.get("/transactions/abc%00def")
    elif where == "query":
        response = admin.get("/transactions/", query_string={"user": "uma\x00@example.com"})
    else:
        form = {"csrf_token": token, "user": world["form"]["user"], "message": "Hi"}
        form.update({"context": "INC\x00-1"} if where == "form field" else {"con\x00text": "1"})
        response = admin.post("/transactions/new", data=form)
    assert response.status_code == 400
    assert "contains a NUL character (U+0000)" in response.text
    assert database_rows(app) == before


@pytest.mark.parametrize("url", [
    "/settings/users/2147483648/role", "/settings/users/9223372036854775808/active",
    "/settings/users/99999999999999999999999/role"])
def test_an_id_past_what_the_database_holds_is_a_404(world, url):
    admin = world["admin"]
    response = admin.post(url, data={"csrf_token": csrf_token_from(admin.get("/").text),
                                     "role": "admin", "active": "0"})
    assert response.status_code == 404


@pytest.mark.parametrize("before", ["2147483648", "-1", "99999999999999999999999", "1e3"])
def test_a_page_marker_past_what_the_database_holds_shows_the_first_page(world, before):
    response = world["admin"].get("/transactions/", query_string={"before": before})
    assert response.status_code == 200
    assert world["arguments"]["public_id"] in response.text
