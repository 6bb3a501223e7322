"""Routing rules: a request sent with tags and no user reaches the person the first matching
rule names, with the rule on its timeline; with no matching rule it is refused with the
reason, and nothing is sent."""
import pytest
from sqlalchemy import select

from sendauth_dashboard.extensions import db
from sendauth_dashboard.models import Event, RoutingRule, Transaction
from sendauth_dashboard.services.approvals import tag_rules
from tests.support.api import Api, make_key
from tests.support.helpers import configure_pagerduty, database_rows


@pytest.fixture
def people(app, make_user):
    configure_pagerduty(app)
    return {"agent": make_user("requestor", email="agent@example.com", name="Agnes Agent"),
            "fay": make_user("member", email="fay@example.com", name="Fay Finance",
                             notify_pagerduty=True),
            "ivan": make_user("member", email="ivan@example.com", name="Ivan It",
                              notify_pagerduty=True)}


def add_rules(as_admin, *rules):
    for key, value, email in rules:
        answer = as_admin.post("/settings/routing", {"key": key, "value": value, "user": email},
                               token_page="/settings/routing")
        assert answer.status_code == 302, answer.text


def rule_order(app):
    with app.app_context():
        return [(r.position, str(r), r.user.email) for r in tag_rules.in_order()]


def test_a_request_with_tags_reaches_the_person_of_the_first_matching_rule(
        app, client, as_admin, people):
    add_rules(as_admin, ("team", "IT", "ivan@example.com"),
              ("team", "finance", "fay@example.com"), ("site", "paris", "ivan@example.com"))
    api = Api(client, make_key(app, people["agent"]))
    answer = api.post("/api/v1/transactions", json={
        "tags": {"Team": "Finance", "site": "paris"}, "message": "Approve the wire transfer"})
    assert answer.status_code == 201, answer.json
    assert answer.json["user"]["email"] == "fay@example.com", "rule 2 comes before rule 3"
    with app.app_context():
        (created,) = db.session.scalars(select(Event).where(
            Event.kind == "transaction.created")).all()
        assert created.data["routed_by"] == "2: team=finance → fay@example.com"
    timeline = api.get(f"/api/v1/transactions/{answer.json['id']}/events").json["items"]
    assert "routed by the rule 2: team=finance → fay@example.com" in timeline[0]["text"]


def test_with_no_matching_rule_the_request_is_refused_with_the_reason(app, client, as_admin,
                                                                      people):
    add_rules(as_admin, ("team", "finance", "fay@example.com"))
    api = Api(client, make_key(app, people["agent"]))
    assert api.get("/api/v1/transactions").status_code == 200  # the key's first use is noted
    before = database_rows(app)
    answer = api.post("/api/v1/transactions", json={"tags": {"team": "legal"},
                                                    "message": "Approve the contract"})
    assert answer.status_code == 422 and answer.mimetype == "application/problem+json"
    assert answer.json["detail"] == (
        "No routing rule matches team=legal. The rules route team=finance. Ask an admin to add "
        "one under Settings → Routing, or send the request to a user.")
    assert answer.json["errors"][0]["field"] == "tags"
    both = api.post("/api/v1/transactions", json={"tags": {"team": "finance"},
                                                  "user": "fay@example.com", "message": "Hi"})
    assert both.status_code == 422 and "not both" in both.json["detail"]
    assert database_rows(app) == before


def test_rules_are_kept_in_order_moved_and_deleted(app, client, as_admin, people):
    add_rules(as_admin, ("team", "it", "ivan@example.com"),
              ("team", "finance", "fay@example.com"))
    page = client.get("/settings/routing")
    assert page.status_code == 200 and "team=finance" in page.text
    with app.app_context():
        finance = db.session.scalar(select(RoutingRule.id).where(
            RoutingRule.tag_value == "finance"))
    assert as_admin.post(f"/settings/routing/{finance}/move", {"direction": "up"},
                         token_page="/settings/routing").status_code == 302
    assert rule_order(app) == [(1, "team=finance", "fay@example.com"),
                               (2, "team=it", "ivan@example.com")]
    assert as_admin.post(f"/settings/routing/{finance}/delete", {},
                         token_page="/settings/routing").status_code == 302
    assert rule_order(app) == [(1, "team=it", "ivan@example.com")]


@pytest.mark.parametrize("form, words", [
    ({"key": "team", "value": "it", "user": "nobody@example.com"},
     "There is no active user with the email &#39;nobody@example.com&#39;"),
    ({"key": "", "value": "it", "user": "ivan@example.com"}, "Enter the tag&#39;s key"),
    ({"key": "TEAM", "value": "It", "user": "fay@example.com"},
     "Rule 1 routes team=it already, to ivan@example.com"),
])
def test_a_rule_that_cannot_be_added_says_why(app, client, as_admin, people, form, words):
    add_rules(as_admin, ("team", "it", "ivan@example.com"))
    before = database_rows(app)
    answer = as_admin.post("/settings/routing", form, token_page="/settings/routing")
    assert answer.status_code == 400 and words in answer.text
    assert database_rows(app) == before


def test_a_request_to_a_user_still_needs_no_rule(app, client, people):
    api = Api(client, make_key(app, people["agent"]))
    answer = api.post("/api/v1/transactions", json={"user": "fay@example.com",
                                                    "message": "Is this you?"})
    assert answer.status_code == 201
    with app.app_context():
        assert db.session.scalar(select(Transaction.id)) is not None


def test_an_admin_key_with_routing_manage_sets_up_the_rules(app, client, people, admin):
    api = Api(client, make_key(app, admin, scopes=["routing:manage"]))
    for value, email in (("it", "ivan@example.com"), ("finance", "fay@example.com")):
        added = api.post("/api/v1/routing-rules", json={"key": "team", "value": value,
                                                        "user": email})
        assert added.status_code == 201, added.json
    again = api.post("/api/v1/routing-rules", json={"key": "Team", "value": "IT",
                                                    "user": "fay@example.com"})
    assert again.status_code == 409 and "Rule 1 routes team=it already" in again.json["detail"]
    moved = api.post(f"/api/v1/routing-rules/{added.json['id']}/move",
                     json={"direction": "up"})
    assert [(r["position"], r["value"]) for r in moved.json["items"]] == [
        (1, "finance"), (2, "it")]
    assert api.delete(f"/api/v1/routing-rules/{added.json['id']}").status_code == 204
    assert rule_order(app) == [(1, "team=it", "ivan@example.com")]
    requestor_key = Api(client, make_key(app, people["agent"], scopes=["transactions:write"]))
    assert requestor_key.get("/api/v1/routing-rules").status_code == 403
