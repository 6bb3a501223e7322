"""Every API operation × every role × the scope it needs, and keys that no longer work: a key
acts with at most its owner's role now, and only with its scopes; a revoked or expired key, or
one whose owner was deactivated, is refused at once. A refusal changes no row."""
from datetime import timedelta

import pytest

from sendauth_dashboard.api import spec
from sendauth_dashboard.extensions import db
from sendauth_dashboard.models import API_SCOPES, ApiKey, User, utcnow
from sendauth_dashboard.services.approvals import groups, tag_rules
from sendauth_dashboard.services.people.api_keys import SCOPE_ROLES
from sendauth_dashboard.services.webhooks import endpoints, queue
from tests.support.api import Api, make_key
from tests.support.helpers import configure_pagerduty, database_rows, send_request

ROLES = ("member", "requestor", "reviewer", "registrar", "admin")
RANK = {role: n for n, role in enumerate(ROLES)}
# A body each operation accepts (where it takes one), so what decides is the key.
BODIES = {
    "create_transaction": {"user": "target@example.com", "message": "Is this you?"},
    "invite_user": {"email": "invited@example.com", "name": "Ivy Invited"},
    "change_user": {},
    "enrolment_link": {},
    "create_endpoint": {"url": "https://tickets.example.com/hooks", "events": ["user.created"]},
    "change_endpoint": {},
    "add_routing_rule": {"key": "team", "value": "legal", "user": "target@example.com"},
    "move_routing_rule": {"direction": "up"},
    "add_approval_group": {"name": "Legal", "members": ["target@example.com"], "threshold": 1},
    "change_approval_group": {},
}


@pytest.fixture
def world(app, make_user):
    configure_pagerduty(app)
    make_user("admin", email="spare-admin@example.com")
    target = make_user("member", email="target@example.com", notify_pagerduty=True)
    holder = make_user("admin", email="holder@example.com", name="Hal Holder")
    public_id = send_request(app, holder, target)
    with app.app_context():
        endpoint, _ = endpoints.create("https://tickets.example.com/hooks", "", ["user.created"],
                                       True, actor=None)
        db.session.flush()
        message = queue.queue_test(endpoint)
        message.status = "sent"
        db.session.commit()
        hook = {"endpoint_id": endpoint.id, "delivery_id": message.id}
        rule = tag_rules.add(tag_key="team", tag_value="help", user_email=target.email,
                             actor=None)
        db.session.commit()
        hook["rule_id"] = rule.id
        group = groups.create(name="Help", member_emails=[target.email], threshold=1,
                              actor=None)
        db.session.commit()
        hook["group_id"] = group.id
    return {"holder": holder, "target": target, "transaction": public_id, "hook": hook}


def call(api, op, world):
    url = op.path.format(public_id=world["transaction"], user_id=world["target"].id,
                         **world["hook"])
    if op.method == "GET":
        return api.get(url)
    if op.method == "DELETE":
        return api.delete(url)
    send = api.post if op.method == "POST" else api.patch
    return send(url, json=BODIES.get(op.name))


def set_owner(app, user_id, **values):
    with app.app_context():
        user = db.session.get(User, user_id)
        for name, value in values.items():
            setattr(user, name, value)
        db.session.commit()


@pytest.mark.parametrize("role", ROLES)
def test_a_key_acts_with_at_most_its_owners_role_now(app, client, world, role):
    """The key was made while its owner was an admin, with every scope; then the owner became
    ``role``: each operation needing a higher role is 403 and changes nothing."""
    api = Api(client, make_key(app, world["holder"]))
    set_owner(app, world["holder"].id, role=role)
    wrong = []
    for op in spec.OPERATIONS:
        before = database_rows(app)
        answer = call(api, op, world)
        allowed = RANK[role] >= RANK[SCOPE_ROLES[op.scope]]
        if allowed and (answer.status_code in (401, 403) or answer.status_code >= 500):
            wrong.append((op.name, answer.status_code, answer.json))
        if not allowed and (answer.status_code != 403 or database_rows(app) != before):
            wrong.append((op.name, answer.status_code, "a refusal changed rows?"))
    assert wrong == []


@pytest.mark.parametrize("scope", API_SCOPES)
def test_a_key_without_the_scope_is_refused_whatever_the_role(app, client, world, scope):
    api = Api(client, make_key(app, world["holder"],
                               scopes=[s for s in API_SCOPES if s != scope]))
    for op in spec.OPERATIONS:
        answer = call(api, op, world)
        assert (answer.status_code == 403) == (op.scope == scope), (op.name, answer.json)


def _expire(app, secret):
    with app.app_context():
        key = db.session.scalar(db.select(ApiKey).order_by(ApiKey.id.desc()))
        key.expires_at = utcnow() - timedelta(seconds=1)
        db.session.commit()


def _revoke(app, secret):
    with app.app_context():
        key = db.session.scalar(db.select(ApiKey).order_by(ApiKey.id.desc()))
        key.revoked_at = utcnow()
        db.session.commit()


def _deactivate_owner(app, secret):
    with app.app_context():
        db.session.scalar(db.select(ApiKey).order_by(ApiKey.id.desc())).user.active = False
        db.session.commit()


@pytest.mark.parametrize("end", [_expire, _revoke, _deactivate_owner],
                         ids=["expired", "revoked", "owner deactivated"])
def test_a_key_that_ended_is_401_for_every_operation(app, client, world, end):
    secret = make_key(app, world["holder"])
    api = Api(client, secret)
    assert api.get("/api/v1/transactions").status_code == 200
    end(app, secret)
    before = database_rows(app)
    for op in spec.OPERATIONS:
        answer = call(api, op, world)
        assert answer.status_code == 401 and answer.mimetype == "application/problem+json", \
            op.name
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    assert database_rows(app) == before


def test_a_requestor_key_sees_only_the_requests_its_owner_sent(app, client, world, make_user):
    requestor = make_user("requestor")
    api = Api(client, make_key(app, requestor))
    assert api.get(f"/api/v1/transactions/{world['transaction']}").status_code == 404
    assert api.get("/api/v1/transactions").json["items"] == []
    assert api.post(f"/api/v1/transactions/{world['transaction']}/cancel").status_code == 404


def test_a_key_that_ends_while_it_waits_is_refused_its_answer(app, client, world, monkeypatch):
    """Deprovisioning ends waiting requests too: a ?wait= that outlives its key gets 401."""
    from sendauth_dashboard.api import transactions as api_transactions

    api = Api(client, make_key(app, world["holder"]))

    def deactivated_meanwhile(transaction, seconds):
        set_owner(app, world["holder"].id, active=False)

    monkeypatch.setattr(api_transactions.waiting, "until_answered", deactivated_meanwhile)
    answer = api.get(f"/api/v1/transactions/{world['transaction']}?wait=5")
    assert answer.status_code == 401 and "message" not in answer.json
