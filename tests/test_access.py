"""Every route against every kind of visitor. A route added without a row here fails the test.

A refusal (401, 403, 404, or a visitor sent to sign in) comes with a page that says so and
changes nothing in the database."""

import pytest
from sqlalchemy import update

from sendauth_dashboard import channels, create_app
from sendauth_dashboard.extensions import db
from sendauth_dashboard.models import SignIn, utcnow
from tests.support.accounts import create_user
from tests.support.api import make_key
from tests.support.config import base_test_config, make_app
from tests.support.databases import SqliteTemplate
from tests.support.helpers import (
    answer_token,
    configure_pagerduty,
    database_rows,
    passkey_ids,
    send_request,
)
from tests.support.web import AuthActions, csrf_token_from

ROLES = ("member", "requestor", "reviewer", "registrar", "admin")
# The roles, plus the two people a transaction belongs to.
IDENTITIES = ("anonymous", *ROLES, "owner", "target")
ROLE_OF = {"owner": "requestor", "target": "member"}
RANK = {role: n for n, role in enumerate(ROLES)}


def gate(minimum, allowed, **special):
    """Anonymous visitors are sent to sign in; roles below ``minimum`` get 403."""
    table = {"anonymous": 302}
    for identity in IDENTITIES[1:]:
        role = ROLE_OF.get(identity, identity)
        table[identity] = allowed if RANK[role] >= RANK[minimum] else 403
    table.update(special)
    return table


def everyone(status, **special):
    return {identity: special.get(identity, status) for identity in IDENTITIES}


# Each channel's settings page, its test and the removal of its secret, from the registry.
CHANNEL_ROUTES = [row for cls in channels.REGISTRY.values() for row in (
    ("GET", "/settings/<channel:name>", f"/settings/{cls.name}", gate("admin", 200)),
    ("POST", "/settings/<channel:name>", f"/settings/{cls.name}", gate("admin", 302)),
    ("POST", "/settings/<channel:name>/test", f"/settings/{cls.name}/test", gate("admin", 302)),
)] + [("POST", "/settings/<channel:name>/remove-<secret_word>",
       f"/settings/{cls.name}/remove-{secret.word or cls.page.secret_word}", gate("admin", 302))
      for cls in channels.REGISTRY.values() for secret in cls.secret_settings]

# (method, the route's rule, a URL of it to try, {identity: expected status}).
ROUTES = CHANNEL_ROUTES + [
    ("GET", "/static/<path:filename>", "/static/css/app.css", everyone(200)),
    ("GET", "/login", "/login", everyone(302, anonymous=200)),
    ("POST", "/login", "/login", everyone(302, anonymous=200)),
    ("POST", "/logout", "/logout", everyone(302)),
    ("POST", "/login/passkey-options", "/login/passkey-options", everyone(200)),
    ("POST", "/login/passkey", "/login/passkey", everyone(302, anonymous=400)),
    ("GET", "/healthz", "/healthz", everyone(200)),
    ("GET", "/favicon.ico", "/favicon.ico", everyone(200)),
    ("GET", "/", "/", gate("member", 200)),
    # People are the registrar's: the users page and everything on it.
    ("GET", "/settings/users", "/settings/users", gate("registrar", 200)),
    ("POST", "/settings/users", "/settings/users", gate("registrar", 400)),
    ("POST", "/settings/users/<int:user_id>/role", "/settings/users/{member}/role",
     gate("registrar", 302)),
    ("POST", "/settings/users/<int:user_id>/enrolment-link",
     "/settings/users/{member}/enrolment-link", gate("registrar", 200)),
    ("POST", "/settings/users/<int:user_id>/active", "/settings/users/{member}/active",
     gate("registrar", 400)),
    ("POST", "/settings/pagerduty/resolve-test", "/settings/pagerduty/resolve-test",
     gate("admin", 302)),
    ("GET", "/profile/messaging", "/profile/messaging", gate("member", 200)),
    # An empty form: nothing changes for those offered only PagerDuty (set up) and without
    # it on; an admin, offered every channel, and the target, whose only channel it turns off,
    # are told to keep one on.
    ("POST", "/profile/messaging", "/profile/messaging",
     gate("member", 302, admin=400, target=400)),
    ("GET", "/profile/passkeys", "/profile/passkeys", gate("member", 200)),
    ("POST", "/profile/passkeys", "/profile/passkeys", gate("member", 400)),
    ("POST", "/profile/passkeys/options", "/profile/passkeys/options", gate("member", 200)),
    ("POST", "/profile/proof-options", "/profile/proof-options", gate("member", 200)),
    ("GET", "/profile/password", "/profile/password", gate("member", 200)),
    ("POST", "/profile/password", "/profile/password", gate("member", 400)),
    ("GET", "/enrol/<token>", "/enrol/{enrolment}", everyone(403, anonymous=302, target=200)),
    ("POST", "/enrol/<token>", "/enrol/{enrolment}", everyone(403, anonymous=302, target=400)),
    ("POST", "/enrol/<token>/options", "/enrol/{enrolment}/options",
     everyone(400, anonymous=400, target=200)),
    ("POST", "/profile/passkeys/<int:passkey_id>/remove", "/profile/passkeys/{passkey}/remove",
     gate("member", 404, target=302)),
    ("GET", "/settings/organisation", "/settings/organisation", gate("admin", 200)),
    ("GET", "/settings/routing", "/settings/routing", gate("admin", 200)),
    ("POST", "/settings/routing", "/settings/routing", gate("admin", 400)),
    ("POST", "/settings/routing/<int:rule_id>/move", "/settings/routing/{routing_rule}/move",
     gate("admin", 400)),
    ("POST", "/settings/routing/<int:rule_id>/delete", "/settings/routing/{routing_rule}/delete",
     gate("admin", 302)),
    ("GET", "/settings/approval-groups", "/settings/approval-groups", gate("admin", 200)),
    ("POST", "/settings/approval-groups", "/settings/approval-groups", gate("admin", 400)),
    ("GET", "/settings/approval-groups/<int:group_id>",
     "/settings/approval-groups/{approval_group}", gate("admin", 200)),
    ("POST", "/settings/approval-groups/<int:group_id>",
     "/settings/approval-groups/{approval_group}", gate("admin", 400)),
    ("POST", "/settings/approval-groups/<int:group_id>/delete",
     "/settings/approval-groups/{approval_group}/delete", gate("admin", 302)),
    ("GET", "/settings/messages", "/settings/messages", gate("admin", 200)),
    ("POST", "/settings/messages", "/settings/messages", gate("admin", 400)),
    ("POST", "/settings/messages/preview", "/settings/messages/preview", gate("admin", 200)),
    ("POST", "/settings/messages/<field_name>/default", "/settings/messages/sms_body/default",
     gate("admin", 302)),
    ("GET", "/settings/audit", "/settings/audit", gate("admin", 200)),
    ("GET", "/insights", "/insights", gate("reviewer", 200)),
    ("GET", "/right-now", "/right-now", gate("reviewer", 200)),
    ("GET", "/settings/channels", "/settings/channels", gate("admin", 200)),
    ("POST", "/settings/organisation", "/settings/organisation", gate("admin", 302)),
    ("GET", "/settings/sign-in", "/settings/sign-in", gate("admin", 200)),
    ("POST", "/settings/sign-in", "/settings/sign-in", gate("admin", 302)),
    # Single sign-on is not set up here: back to the sign-in page, which says so.
    ("GET", "/login/oidc", "/login/oidc", everyone(302)),
    ("GET", "/login/oidc/callback", "/login/oidc/callback", everyone(400)),
    ("GET", "/transactions/", "/transactions/", gate("requestor", 200)),
    ("GET", "/transactions/new", "/transactions/new", gate("requestor", 200)),
    ("POST", "/transactions/new", "/transactions/new", gate("requestor", 400)),
    ("GET", "/transactions/stream", "/transactions/stream", gate("requestor", 200, anonymous=401)),
    ("GET", "/transactions/<public_id>", "/transactions/{transaction}",
     gate("requestor", 200, requestor=404)),
    ("POST", "/transactions/<public_id>/cancel", "/transactions/{transaction}/cancel",
     gate("requestor", 302, requestor=404, reviewer=403, registrar=403)),
    ("POST", "/transactions/<public_id>/resolve-incident",
     "/transactions/{transaction}/resolve-incident", gate("reviewer", 302)),
    # No session, no CSRF token: the signature decides, and none is set up here.
    ("POST", "/webhooks/pagerduty", "/webhooks/pagerduty", everyone(403)),
    # Signed out, the user's own passkey is the proof: the page and its challenge are open to
    # whoever holds the link; a signed-in someone else is refused.
    ("GET", "/authenticate/<token>", "/authenticate/{token}",
     everyone(403, anonymous=200, target=200)),
    ("POST", "/authenticate/<token>", "/authenticate/{token}",
     everyone(403, anonymous=400, target=400)),
    ("POST", "/authenticate/<token>/passkey-options", "/authenticate/{token}/passkey-options",
     everyone(403, anonymous=200, target=200)),
    ("GET", "/authenticate/<token>/status", "/authenticate/{token}/status", everyone(204)),
    ("GET", "/profile/api-keys", "/profile/api-keys", gate("member", 200)),
    ("POST", "/profile/api-keys", "/profile/api-keys", gate("member", 400)),
    ("POST", "/profile/api-keys/<int:key_id>/revoke", "/profile/api-keys/{api_key}/revoke",
     gate("member", 404, owner=302)),
    ("GET", "/settings/api-keys", "/settings/api-keys", gate("admin", 200)),
    ("POST", "/settings/api-keys/<int:key_id>/revoke", "/settings/api-keys/{api_key}/revoke",
     gate("admin", 302)),
    ("GET", "/settings/webhooks", "/settings/webhooks", gate("admin", 200)),
    ("POST", "/settings/webhooks", "/settings/webhooks", gate("admin", 400)),
    ("GET", "/settings/webhooks/<int:endpoint_id>", "/settings/webhooks/{webhook}",
     gate("admin", 200)),
    ("POST", "/settings/webhooks/<int:endpoint_id>", "/settings/webhooks/{webhook}",
     gate("admin", 400)),
    ("POST", "/settings/webhooks/<int:endpoint_id>/rotate", "/settings/webhooks/{webhook}/rotate",
     gate("admin", 200)),
    ("POST", "/settings/webhooks/<int:endpoint_id>/delete", "/settings/webhooks/{webhook}/delete",
     gate("admin", 302)),
    ("POST", "/settings/webhooks/<int:endpoint_id>/test", "/settings/webhooks/{webhook}/test",
     gate("admin", 302)),
    ("POST", "/settings/webhooks/<int:endpoint_id>/deliveries/<int:message_id>/replay",
     "/settings/webhooks/{webhook}/deliveries/{webhook_message}/replay", gate("admin", 302)),
    ("POST", "/settings/sign-in/scim-token", "/settings/sign-in/scim-token", gate("admin", 200)),
    ("POST", "/settings/sign-in/scim-token/revoke", "/settings/sign-in/scim-token/revoke",
     gate("admin", 302)),
    ("POST", "/settings/sign-in/scim-groups/<int:group_id>/role",
     "/settings/sign-in/scim-groups/1/role", gate("admin", 404)),
    # SCIM takes its own bearer token only, never a session: 401 signed out and for the most a
    # session can be (one check before every SCIM view, so the roles between add nothing).
    *((method, rule, url, {"anonymous": 401, "admin": 401}) for method, rule, url in (
        ("GET", "/scim/v2/ServiceProviderConfig", "/scim/v2/ServiceProviderConfig"),
        ("GET", "/scim/v2/ResourceTypes", "/scim/v2/ResourceTypes"),
        ("GET", "/scim/v2/ResourceTypes/<name>", "/scim/v2/ResourceTypes/User"),
        ("GET", "/scim/v2/Schemas", "/scim/v2/Schemas"),
        ("GET", "/scim/v2/Schemas/<path:schema_id>",
         "/scim/v2/Schemas/urn:ietf:params:scim:schemas:core:2.0:User"),
        ("POST", "/scim/v2/.search", "/scim/v2/.search"),
        ("GET", "/scim/v2/Users", "/scim/v2/Users"), ("POST", "/scim/v2/Users", "/scim/v2/Users"),
        ("GET", "/scim/v2/Users/<user_id>", "/scim/v2/Users/{member}"),
        ("PUT", "/scim/v2/Users/<user_id>", "/scim/v2/Users/{member}"),
        ("PATCH", "/scim/v2/Users/<user_id>", "/scim/v2/Users/{member}"),
        ("DELETE", "/scim/v2/Users/<user_id>", "/scim/v2/Users/{member}"),
        ("GET", "/scim/v2/Groups", "/scim/v2/Groups"),
        ("POST", "/scim/v2/Groups", "/scim/v2/Groups"),
        ("GET", "/scim/v2/Groups/<public_id>", "/scim/v2/Groups/g1"),
        ("PUT", "/scim/v2/Groups/<public_id>", "/scim/v2/Groups/g1"),
        ("PATCH", "/scim/v2/Groups/<public_id>", "/scim/v2/Groups/g1"),
        ("DELETE", "/scim/v2/Groups/<public_id>", "/scim/v2/Groups/g1"))),
    # The API's reference is public; the API itself never takes the session cookie: every
    # operation is 401 for everyone signed in to the pages (tests/test_api_access.py has the
    # table of keys).
    ("GET", "/api/v1/openapi.json", "/api/v1/openapi.json", everyone(200)),
    ("GET", "/api/docs", "/api/docs", everyone(200)),
    *((method, rule, rule.replace("<public_id>", "{transaction}")
       .replace("<int:user_id>", "{member}").replace("<int:endpoint_id>", "{webhook}")
       .replace("<int:delivery_id>", "{webhook_message}")
       .replace("<int:rule_id>", "{routing_rule}")
       .replace("<int:group_id>", "{approval_group}"), everyone(401))
      for method, rule in (
        ("GET", "/api/v1/transactions"), ("POST", "/api/v1/transactions"),
        ("GET", "/api/v1/transactions/<public_id>"),
        ("POST", "/api/v1/transactions/<public_id>/cancel"),
        ("GET", "/api/v1/transactions/<public_id>/events"),
        ("GET", "/api/v1/users"), ("POST", "/api/v1/users"),
        ("GET", "/api/v1/users/<int:user_id>"), ("PATCH", "/api/v1/users/<int:user_id>"),
        ("POST", "/api/v1/users/<int:user_id>/enrolment-link"), ("GET", "/api/v1/audit"),
        ("GET", "/api/v1/webhook-endpoints"), ("POST", "/api/v1/webhook-endpoints"),
        ("GET", "/api/v1/webhook-endpoints/<int:endpoint_id>"),
        ("PATCH", "/api/v1/webhook-endpoints/<int:endpoint_id>"),
        ("DELETE", "/api/v1/webhook-endpoints/<int:endpoint_id>"),
        ("POST", "/api/v1/webhook-endpoints/<int:endpoint_id>/rotate-secret"),
        ("POST", "/api/v1/webhook-endpoints/<int:endpoint_id>/test"),
        ("GET", "/api/v1/webhook-endpoints/<int:endpoint_id>/deliveries"),
        ("POST", "/api/v1/webhook-endpoints/<int:endpoint_id>/deliveries/<int:delivery_id>"
                 "/replay"),
        ("GET", "/api/v1/routing-rules"), ("POST", "/api/v1/routing-rules"),
        ("POST", "/api/v1/routing-rules/<int:rule_id>/move"),
        ("DELETE", "/api/v1/routing-rules/<int:rule_id>"),
        ("GET", "/api/v1/approval-groups"), ("POST", "/api/v1/approval-groups"),
        ("GET", "/api/v1/approval-groups/<int:group_id>"),
        ("PATCH", "/api/v1/approval-groups/<int:group_id>"),
        ("DELETE", "/api/v1/approval-groups/<int:group_id>"))),
]


def enrolment_token(app, user):
    """A passkey enrolment link for ``user``, as an admin issues it."""
    from sendauth_dashboard.models import User
    from sendauth_dashboard.services.people import enrolment

    with app.app_context():
        token = enrolment.issue(db.session.get(User, user.id), actor=None)
        db.session.commit()
        return token


def api_key_id(app, user):
    """The id of an API key ``user`` made."""
    from sendauth_dashboard.models import ApiKey

    make_key(app, user)
    with app.app_context():
        return db.session.scalar(db.select(ApiKey.id).where(ApiKey.user_id == user.id))


def routing_rule_id(app, user):
    """A routing rule that sends requests tagged team=help to ``user``."""
    from sendauth_dashboard.services.approvals import tag_rules

    with app.app_context():
        rule = tag_rules.add(tag_key="team", tag_value="help", user_email=user.email, actor=None)
        db.session.commit()
        return rule.id


def approval_group_id(app, user):
    """An approval group of one, ``user``."""
    from sendauth_dashboard.services.approvals import groups

    with app.app_context():
        group = groups.create(name="Help", member_emails=[user.email], threshold=1, actor=None)
        db.session.commit()
        return group.id


def webhook_ids(app):
    """An endpoint (not sending anywhere: turned off) and one delivery it has had."""
    from sendauth_dashboard.services.webhooks import endpoints, queue

    with app.app_context():
        endpoint, _ = endpoints.create("https://tickets.example.com/hooks", "", ["user.created"],
                                       False, actor=None)
        db.session.flush()
        message = queue.queue_test(endpoint)
        message.status = "sent"
        db.session.commit()
        return {"webhook": endpoint.id, "webhook_message": message.id}


def app_routes(app):
    return {(method, rule.rule) for rule in app.url_map.iter_rules()
            for method in rule.methods - {"HEAD", "OPTIONS"}}


def test_every_route_has_a_row(app):
    covered = {(method, rule) for method, rule, _, _ in ROUTES}
    assert app_routes(app) - covered == set(), "add the new route to ROUTES"
    assert covered - app_routes(app) == set(), "remove the route that is gone"


@pytest.fixture
def app_config():
    return {"SSE_MAX_SECONDS": 0.0}


class World:
    """What every row of the role table is tried against, made once per module (per worker)
    through the product's services into a SQLite file: an admin (so no rule about the last
    admin gets in the way), one person of each role, a request sent by its owner to its target
    (who has a passkey and an enrolment link). Each test works on a copy of the file."""

    def __init__(self, folder, sqlite_template):
        self.path = folder / "world.db"
        self.template = SqliteTemplate(self.path)
        app = make_app(folder, SQLALCHEMY_DATABASE_URI=sqlite_template.copy(self.path))
        configure_pagerduty(app)
        self.people = {
            "owner": create_user(app, "requestor", "owner@example.com", "Owen Owner"),
            "target": create_user(app, "member", "target@example.com", "Tara Target",
                                  notify_pagerduty=True),
        }
        create_user(app, "admin", "spare-admin@example.com", "Sam Spare")
        for role in ROLES:
            self.people[role] = create_user(app, role, f"{role}@example.com")
        public_id = send_request(app, self.people["owner"], self.people["target"])
        self.url_parts = {"member": self.people["target"].id, "transaction": public_id,
                          "token": answer_token(app, public_id),
                          "enrolment": enrolment_token(app, self.people["target"]),
                          "passkey": passkey_ids(app, self.people["target"])[0],
                          "api_key": api_key_id(app, self.people["owner"]),
                          "routing_rule": routing_rule_id(app, self.people["target"]),
                          "approval_group": approval_group_id(app, self.people["target"]),
                          **webhook_ids(app)}
        self.visits = {identity: Visit.begin(app, self.people.get(identity))
                       for identity in IDENTITIES}
        with app.app_context():
            db.engine.dispose()

    def copy(self, path):
        return self.template.copy(path)


class Visit:
    """A visitor's session cookie and CSRF token, signed in once in the world: its sign-in is
    a row of the world's file, so every copy holds it, and each of the ~900 rows is one request
    rather than four (the sign-in form, its post, a page for the token, then the row's own)."""

    def __init__(self, cookie_name, cookie, csrf_token):
        self.cookie_name, self.cookie, self.csrf_token = cookie_name, cookie, csrf_token

    @classmethod
    def begin(cls, app, person):
        client = app.test_client()
        if person is not None:
            AuthActions(client).login(person)
        token = csrf_token_from(client.get("/" if person else "/login").text)
        name = app.config["SESSION_COOKIE_NAME"]
        return cls(name, client.get_cookie(name).value, token)

    def client(self, app):
        client = app.test_client()
        client.set_cookie(self.cookie_name, self.cookie)
        return client


@pytest.fixture(scope="module")
def world(tmp_path_factory, sqlite_template):
    return World(tmp_path_factory.mktemp("access-world"), sqlite_template)


@pytest.fixture
def world_app(world, tmp_path, monkeypatch, app_config):
    monkeypatch.setenv("SENDAUTH_INSTANCE_PATH", str(tmp_path / "instance"))
    app = create_app(base_test_config(
        tmp_path, SQLALCHEMY_DATABASE_URI=world.copy(tmp_path / "test.db"), **app_config))
    with app.app_context():
        # The world's sessions began when the module's first test ran, maybe minutes ago: a
        # session used more than a minute later notes its use (a row changed), which would
        # read as a refused request changing the database. Each row starts just signed in.
        db.session.execute(update(SignIn).values(last_seen_at=utcnow()))
        db.session.commit()
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


# Each row against each identity it names (a row may name fewer than all: see SCIM's).
CASES = [(route, identity) for route in ROUTES for identity in IDENTITIES
         if identity in route[3]]


@pytest.mark.parametrize(("route", "identity"), CASES,
                         ids=[f"{route[0]} {route[2]}-{identity}" for route, identity in CASES])
def test_route_answers_each_visitor_as_its_rules_say(world, world_app, identity, route):
    method, _, url, expected = route
    app = world_app
    url = url.format(**world.url_parts)
    visit = world.visits[identity]
    client = visit.client(app)
    token = visit.csrf_token
    before = database_rows(app)
    if method == "GET":
        response = client.get(url)
    else:
        response = client.open(url, method=method, data={"csrf_token": token})
    response.close()
    assert response.status_code == expected[identity]
    sent_to_sign_in = response.status_code == 302 and identity == "anonymous"
    if sent_to_sign_in:
        assert response.headers["Location"].startswith("/login")
    if sent_to_sign_in or response.status_code in (401, 403, 404):
        assert database_rows(app) == before, "a refused request changed the database"
    if response.status_code in (401, 403, 404):
        assert ('<p class="error-code">' in response.text
                or response.mimetype in ("application/problem+json", "application/scim+json")
                or "This request is for someone else" in response.text
                or "data-enrol-refused" in response.text)


def test_a_channel_or_secret_that_does_not_exist_is_not_found(app, as_admin):
    assert as_admin.client.get("/settings/fax").status_code == 404
    assert as_admin.post("/settings/sms/remove-key").status_code == 404
    assert as_admin.post("/settings/sms/remove-token").status_code == 302
