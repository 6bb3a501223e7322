"""The JSON API: a help-desk script sends a request, waits for the answer, reads it with its
ticket, cancels; every error is a problem document."""
import csv
import io
import threading
from datetime import timedelta

import pytest
import requests
from sqlalchemy.exc import OperationalError

from sendauth_dashboard.extensions import db
from sendauth_dashboard.models import ApiKey, IdempotentRequest, Transaction, User, utcnow
from sendauth_dashboard.services.people import api_keys
from sendauth_dashboard.services.requests import transactions
from tests.support.api import Api, make_key
from tests.support.helpers import configure_pagerduty
from tests.support.servers import LiveServer

TICKET = {"system": "jira", "id": "HELP-1234", "url": "https://jira.example/browse/HELP-1234"}


@pytest.fixture
def people(app, make_user):
    configure_pagerduty(app)
    return {"agent": make_user("requestor", email="agent@example.com", name="Agnes Agent"),
            "user": make_user("member", email="uma@example.com", name="Uma User",
                              notify_pagerduty=True)}


@pytest.fixture
def api(app, client, people):
    return Api(client, make_key(app, people["agent"]))


def send(api, **fields):
    body = {"user": "uma@example.com", "message": "Confirm your password reset",
            "ticket": TICKET, **fields}
    return api.post("/api/v1/transactions", json=body)


def test_a_script_sends_waits_and_reads_verified_with_its_ticket(app, client, api, people):
    sent = send(api)
    assert sent.status_code == 201, sent.json
    body = sent.json
    assert body["status"] == "pending" and len(body["code"]) == 3
    assert body["ticket"] == TICKET and body["channels"] == ["pagerduty"]
    assert body["links"]["page"].endswith(f"/transactions/{body['id']}")
    assert sent.headers["Location"] == body["links"]["self"]

    def answer():
        # As the answer page records it once the passkey and the code have been checked.
        with app.app_context():
            transaction = db.session.scalar(db.select(Transaction).where(
                Transaction.public_id == body["id"]))
            transactions.answer(transaction, "verify", user=transaction.user,
                                data={"proof": "passkey"})
            db.session.commit()

    waiter = threading.Timer(0.3, answer)
    waiter.start()
    read = api.get(f"/api/v1/transactions/{body['id']}?wait=10")
    waiter.join()
    assert read.status_code == 200
    assert read.json["status"] == "verified" and read.json["answered_how"] == "passkey"
    assert read.json["ticket"] == TICKET and read.json["code"] == body["code"]


def test_wait_answers_after_n_seconds_when_nothing_changes(app, api):
    app.config["API_MAX_WAIT_SECONDS"] = 0.3
    public_id = send(api).json["id"]
    read = api.get(f"/api/v1/transactions/{public_id}?wait=60")
    assert read.status_code == 200 and read.json["status"] == "pending"


def test_the_code_goes_only_to_the_key_that_sent_it(app, client, api, people, make_user):
    public_id = send(api).json["id"]
    other = Api(client, make_key(app, people["agent"], name="Another"))
    assert other.get(f"/api/v1/transactions/{public_id}").json["code"] is None
    reviewer = Api(client, make_key(app, make_user("reviewer")))
    assert reviewer.get(f"/api/v1/transactions/{public_id}").json["code"] is None


@pytest.mark.both_databases
def test_list_filters_by_ticket_and_pages_with_a_cursor(api):
    for n in range(3):
        send(api, ticket={"id": f"T-{n}"})
    one = api.get("/api/v1/transactions?ticket=T-1").json
    assert [t["ticket"]["id"] for t in one["items"]] == ["T-1"] and one["next_cursor"] is None
    first = api.get("/api/v1/transactions?limit=2").json
    second = api.get(f"/api/v1/transactions?limit=2&cursor={first['next_cursor']}").json
    assert [t["ticket"]["id"] for t in first["items"] + second["items"]] == ["T-2", "T-1", "T-0"]
    assert second["next_cursor"] is None
    # A cursor past every row id (32 bits on PostgreSQL) reads from the newest.
    assert len(api.get("/api/v1/transactions?cursor=999999999999999999").json["items"]) == 3
    assert api.get("/api/v1/users?cursor=999999999999999999").status_code == 403


def test_cancel_then_cancel_again_is_a_conflict(api):
    public_id = send(api).json["id"]
    cancelled = api.post(f"/api/v1/transactions/{public_id}/cancel")
    assert cancelled.status_code == 200 and cancelled.json["status"] == "cancelled"
    again = api.post(f"/api/v1/transactions/{public_id}/cancel")
    assert again.status_code == 409 and again.mimetype == "application/problem+json"
    events = api.get(f"/api/v1/transactions/{public_id}/events").json["items"]
    assert [e["kind"] for e in events][:1] == ["transaction.created"]
    said = events[0]["text"]
    assert said.startswith("Agnes Agent sent the request through PagerDuty (with the API key "
                           "Test key (sa_") and said.endswith("…), for ticket HELP-1234)"), said
    assert "transaction.cancelled" in [e["kind"] for e in events]


def test_no_channel_is_a_422_with_each_channels_reason(app, api, make_user):
    make_user("member", email="nobody@example.com", notify_email=False)
    refused = send(api, user="nobody@example.com")
    assert refused.status_code == 422 and refused.mimetype == "application/problem+json"
    assert refused.json["channels"]["email"] == "off in their messaging preferences"
    assert refused.json["errors"][0]["field"] == "user"


def test_the_send_limit_is_a_429_with_retry_after(app, api):
    app.config["SEND_LIMIT_PER_USER"] = [1, 600]
    assert send(api).status_code == 201
    limited = send(api)
    assert limited.status_code == 429 and 590 <= int(limited.headers["Retry-After"]) <= 600


@pytest.mark.parametrize("body, status", [
    ({"user": "uma@example.com"}, 422),
    ({"user": "uma@example.com", "message": "x", "extra": 1}, 422),
    ([1, 2], 422),
])
def test_bodies_that_do_not_fit_are_422_with_the_fields(api, body, status):
    refused = api.post("/api/v1/transactions", json=body)
    assert refused.status_code == status and refused.json["errors"]


def test_errors_are_problem_documents_never_pages(client, api):
    cases = [
        (api.post("/api/v1/transactions", data="{", content_type="application/json"), 400),
        (client.get("/api/v1/transactions"), 401),
        (api.get("/api/v1/transactions/nope"), 404),
        (api.client.delete("/api/v1/transactions"), 405),
        (api.post("/api/v1/transactions", data="a" * 70_000, content_type="application/json"),
         413),
        (api.post("/api/v1/transactions", data="user=x", content_type="text/plain"), 415),
    ]
    for response, status in cases:
        assert (response.status_code, response.mimetype) == (status, "application/problem+json")
        assert {"type", "title", "status", "detail"} <= set(response.json)


def test_the_session_cookie_never_reaches_the_api_and_a_key_never_opens_a_page(
        app, client, auth, people, api):
    auth.login(people["agent"])
    assert client.get("/api/v1/transactions").status_code == 401
    keyed = Api(app.test_client(), api.secret)
    answer = keyed.get("/api/v1/transactions")
    assert answer.status_code == 200 and "Set-Cookie" not in answer.headers
    page = keyed.get("/transactions/")
    assert page.status_code == 302 and page.headers["Location"].startswith("/login")
    assert keyed.get("/transactions/stream").status_code == 401


def test_idempotency_key_replays_refuses_another_body_and_frees_after_a_refusal(api):
    headers = {"Idempotency-Key": "ticket-HELP-1234-send"}
    first = api.post("/api/v1/transactions", json={"user": "uma@example.com", "message": "a"},
                     headers=headers)
    again = api.post("/api/v1/transactions", json={"user": "uma@example.com", "message": "a"},
                     headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json == first.json and again.headers["Idempotent-Replayed"] == "true"
    other = api.post("/api/v1/transactions", json={"user": "uma@example.com", "message": "b"},
                     headers=headers)
    assert other.status_code == 422


def test_an_idempotency_key_left_unanswered_by_a_dead_process_frees_after_minutes(app, api):
    with app.app_context():
        key = db.session.scalar(db.select(ApiKey))
        db.session.add(IdempotentRequest(api_key_id=key.id, key="k", fingerprint="?",
                                         created_at=utcnow() - timedelta(minutes=1)))
        db.session.commit()
    body, headers = {"user": "uma@example.com", "message": "a"}, {"Idempotency-Key": "k"}
    assert api.post("/api/v1/transactions", json=body, headers=headers).status_code == 409
    with app.app_context():
        db.session.execute(db.update(IdempotentRequest).values(
            created_at=utcnow() - timedelta(minutes=6)))
        db.session.commit()
    assert api.post("/api/v1/transactions", json=body, headers=headers).status_code == 201


@pytest.mark.both_databases
def test_ten_posts_with_one_idempotency_key_released_together_make_one_transaction(
        app, api, people):
    """Ten retries of one send arrive at once: one transaction; each answer is its 201 again
    or 409 (the first still running), never a second request to the user."""
    barrier, answers = threading.Barrier(10), []
    served = LiveServer(app)

    def post():
        barrier.wait(timeout=10)
        answers.append(requests.post(
            f"{served.url}/api/v1/transactions", timeout=30,
            json={"user": "uma@example.com", "message": "once"},
            headers={"Authorization": f"Bearer {api.secret}", "Idempotency-Key": "k-10"}))

    threads = [threading.Thread(target=post) for _ in range(10)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    finally:
        served.stop()
    statuses = sorted(a.status_code for a in answers)
    assert len(statuses) == 10 and set(statuses) <= {201, 409} and 201 in statuses, statuses
    assert len({a.json()["id"] for a in answers if a.status_code == 201}) == 1
    with app.app_context():
        assert db.session.query(Transaction).count() == 1


@pytest.fixture
def three_a_minute(app_config):
    app_config.update(RATELIMIT_ENABLED=True, API_RATE_LIMIT="3 per minute")


def test_rate_limit_per_key_with_retry_after_and_ratelimit_headers(three_a_minute, api):
    answers = [api.get("/api/v1/transactions") for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert answers[0].headers["RateLimit-Limit"] == "3"
    assert answers[0].headers["RateLimit-Remaining"] == "2"
    assert int(answers[3].headers["Retry-After"]) >= 1


def test_create_api_key_prints_the_key_once_and_stores_its_hash(app, runner, people):
    result = runner.invoke(args=["create-api-key", "--email", "agent@example.com", "--name",
                                 "Jira", "--scopes", "transactions:read,transactions:write",
                                 "--days", "30"])
    assert result.exit_code == 0, result.output
    secret = result.output.split()[-1]
    assert secret.startswith("sa_")
    with app.app_context():
        key = db.session.query(ApiKey).one()
        assert key.prefix == secret[:10] and secret not in (key.token_hash, key.prefix)
        assert api_keys.find(secret).id == key.id


def test_a_key_expires_within_a_year_and_needs_a_scope_the_role_allows(app, people):
    with app.app_context():
        owner = db.session.get(User, people["agent"].id)
        for kwargs in ({"days": 366, "scopes": ["transactions:read"]},
                       {"days": 30, "scopes": ["users:read"]},
                       {"days": 30, "scopes": []}):
            with pytest.raises(api_keys.ApiKeyError):
                api_keys.create(owner, name="k", **kwargs)


def test_profile_page_shows_a_new_key_once_and_revokes_it(app, client, auth, people):
    from tests.support.web import csrf_token_from

    auth.login(people["agent"])
    token = csrf_token_from(client.get("/profile/api-keys").text)
    made = client.post("/profile/api-keys", data={
        "csrf_token": token, "name": "Jira button", "scopes": ["transactions:write"],
        "expires_in_days": "30"})
    assert made.status_code == 200 and "data-new-api-key" in made.text
    secret = made.text.split("<code>sa_", 1)[1].split("</code>", 1)[0]
    assert "sa_" + secret not in client.get("/profile/api-keys").text
    with app.app_context():
        key_id = db.session.query(ApiKey).one().id
    client.post(f"/profile/api-keys/{key_id}/revoke", data={"csrf_token": token})
    assert Api(client, "sa_" + secret).get("/api/v1/transactions").status_code == 401


def test_users_and_audit_for_an_admin_key(app, client, make_user, people):
    admin = make_user("admin", email="ada@example.com")
    api = Api(client, make_key(app, admin))
    listed = api.get("/api/v1/users").json["items"]
    assert {"agent@example.com", "uma@example.com"} <= {u["email"] for u in listed}
    invited = api.post("/api/v1/users", json={"email": "new@example.com", "name": "New One",
                                              "role": "requestor"})
    assert invited.status_code == 201 and "/enrol/" in invited.json["url"]
    changed = api.patch(f"/api/v1/users/{people['agent'].id}", json={"role": "member"})
    assert changed.status_code == 200 and changed.json["role"] == "member"
    last_admin = api.patch(f"/api/v1/users/{admin.id}", json={"role": "member"})
    assert last_admin.status_code == 409
    link = api.post(f"/api/v1/users/{people['user'].id}/enrolment-link",
                    json={"send_email": True})
    assert link.status_code == 201 and link.json["kind"] == "passkey"
    # Email is not set up here: the link comes back instead, with why.
    assert "/enrol/" in link.json["url"] and not link.json["emailed"]
    assert link.json["email_error"]
    kinds = [e["kind"] for e in api.get("/api/v1/audit?limit=100").json["items"]]
    assert "user.role_changed" in kinds and "api_key.created" in kinds


def test_transactions_service_stores_the_ticket(app, people):
    with app.app_context():
        agent = db.session.get(User, people["agent"].id)
        t = transactions.create(requestor=agent, user_email="uma@example.com", message="m",
                                ticket=TICKET)
        assert (t.ticket_system, t.ticket_id, t.ticket_url) == tuple(TICKET.values())
        db.session.rollback()


def test_the_ticket_shows_on_the_page_in_the_list_its_filter_and_search(
        app, client, auth, api, people):
    public_id = send(api).json["id"]
    send(api, ticket={"id": "OTHER-1"})
    auth.login(people["agent"])
    page = client.get(f"/transactions/{public_id}").text
    assert 'href="https://jira.example/browse/HELP-1234"' in page and "jira HELP-1234" in page
    for query in ("ticket=HELP-1234", "q=HELP-1234"):
        listed = client.get(f"/transactions/?{query}").text
        assert public_id in listed and "OTHER-1" not in listed, query
    rows = list(csv.DictReader(io.StringIO(
        client.get("/transactions/?ticket=HELP-1234&format=csv").text)))
    assert [(r["id"], r["ticket_system"], r["ticket_id"], r["ticket_url"]) for r in rows] == \
        [(public_id, *TICKET.values())]


@pytest.mark.parametrize("failure, status", [
    (RuntimeError("a bug"), 500),
    (OperationalError("SELECT 1", {}, Exception("database is locked")), 503),
], ids=["bug", "database busy"])
def test_a_failure_on_our_side_is_a_problem_document_too(app, api, monkeypatch, failure,
                                                          status):
    from sendauth_dashboard.api import transactions as api_transactions

    def fail(*args, **kwargs):
        raise failure

    app.config["PROPAGATE_EXCEPTIONS"] = False
    monkeypatch.setattr(api_transactions.transaction_list, "matching", fail)
    answer = api.get("/api/v1/transactions")
    assert (answer.status_code, answer.mimetype) == (status, "application/problem+json")
    assert answer.json["status"] == status and "Traceback" not in answer.text


def test_making_and_revoking_a_key_are_announced_to_its_owner(app, make_user, fake_smtp):
    from tests.support.helpers import configure_email, dispatch

    configure_email(app, fake_smtp.port)
    owner = make_user("requestor", email="rae@example.com")  # email on, by default
    secret = make_key(app, owner, name="Zendesk macro")
    dispatch(app)  # notices go through the outbox
    fake_smtp.wait_for(lambda fake: len(fake.received) == 1)
    made = fake_smtp.received[0]
    assert made.rcpt_tos == ["rae@example.com"] and "Zendesk macro" in made.body()
    assert secret not in made.message.as_string()
    with app.app_context():
        key = db.session.scalar(db.select(ApiKey))
        api_keys.revoke(key, actor=key.user)
        db.session.commit()
    dispatch(app)
    fake_smtp.wait_for(lambda fake: len(fake.received) == 2)
    assert "revoked" in fake_smtp.received[1].body()
