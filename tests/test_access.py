"""Every route against every role. A route added without a row here fails the test."""
import pytest

from .conftest import AuthActions, csrf_token_from

IDENTITIES = ("anonymous", "member", "requestor", "reviewer", "admin")

# (method, rule) -> (url to try, minimum role or None when public, status when allowed:
# a number, or a dict for pages that answer anonymous and signed-in visitors differently)
ROUTES = {
    ("GET", "/static/<path:filename>"): ("/static/css/app.css", None, 200),
    ("GET", "/login"): ("/login", None, {"anonymous": 200, "signed_in": 302}),
    ("POST", "/login"): ("/login", None, {"anonymous": 200, "signed_in": 302}),
    ("POST", "/logout"): ("/logout", None, 302),
    ("GET", "/healthz"): ("/healthz", None, 200),
    ("GET", "/"): ("/", "member", 200),
    ("GET", "/settings/users"): ("/settings/users", "admin", 200),
    ("POST", "/settings/users"): ("/settings/users", "admin", 400),
    ("POST", "/settings/users/<int:user_id>/role"): ("/settings/users/{member}/role", "admin", 302),
    ("POST", "/settings/users/<int:user_id>/active"): ("/settings/users/{member}/active", "admin", 400),
    ("GET", "/settings/pagerduty"): ("/settings/pagerduty", "admin", 200),
    ("POST", "/settings/pagerduty"): ("/settings/pagerduty", "admin", 302),
    ("POST", "/settings/pagerduty/test"): ("/settings/pagerduty/test", "admin", 302),
    ("POST", "/settings/pagerduty/remove-key"): ("/settings/pagerduty/remove-key", "admin", 302),
    ("GET", "/settings/email"): ("/settings/email", "admin", 200),
    ("POST", "/settings/email"): ("/settings/email", "admin", 302),
    ("POST", "/settings/email/test"): ("/settings/email/test", "admin", 302),
    ("POST", "/settings/email/remove-password"): ("/settings/email/remove-password", "admin", 302),
    ("GET", "/settings/sms"): ("/settings/sms", "admin", 200),
    ("POST", "/settings/sms"): ("/settings/sms", "admin", 302),
    ("POST", "/settings/sms/test"): ("/settings/sms/test", "admin", 302),
    ("POST", "/settings/sms/remove-token"): ("/settings/sms/remove-token", "admin", 302),
    ("GET", "/settings/slack"): ("/settings/slack", "admin", 200),
    ("POST", "/settings/slack"): ("/settings/slack", "admin", 302),
    ("POST", "/settings/slack/test"): ("/settings/slack/test", "admin", 302),
    ("POST", "/settings/slack/remove-token"): ("/settings/slack/remove-token", "admin", 302),
    ("GET", "/profile/messaging"): ("/profile/messaging", "member", 200),
    ("POST", "/profile/messaging"): ("/profile/messaging", "member", 400),
}

RANK = {role: n for n, role in enumerate(IDENTITIES)}


def app_routes(app):
    return {(method, rule.rule) for rule in app.url_map.iter_rules()
            for method in rule.methods - {"HEAD", "OPTIONS"}}


def test_every_route_has_a_row(app):
    assert app_routes(app) - set(ROUTES) == set(), "add the new route to ROUTES"
    assert set(ROUTES) - app_routes(app) == set(), "remove the route that is gone"


def expected(identity, minimum, allowed_status):
    if isinstance(allowed_status, dict):
        allowed_status = allowed_status["anonymous" if identity == "anonymous" else "signed_in"]
    if minimum is None:
        return allowed_status
    if identity == "anonymous":
        return 302
    return allowed_status if RANK[identity] >= RANK[minimum] else 403


@pytest.mark.parametrize("identity", IDENTITIES)
@pytest.mark.parametrize("route", sorted(ROUTES))
def test_route_answers_each_role_as_its_rules_say(app, make_user, identity, route):
    method, _ = route
    url, minimum, allowed_status = ROUTES[route]
    member = make_user("member")
    make_user("admin")  # so no rule about the last admin gets in the way
    client = app.test_client()
    auth = AuthActions(client)
    if identity != "anonymous":
        auth.login(make_user(identity))
    url = url.format(member=member.id)
    if method == "GET":
        response = client.get(url)
    else:
        token = csrf_token_from(client.get("/login" if identity == "anonymous" else "/").text)
        response = client.post(url, data={"csrf_token": token})
    response.close()
    assert response.status_code == expected(identity, minimum, allowed_status)
