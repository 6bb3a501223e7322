"""PagerDuty's side of the story: its signed V3 webhooks put the incident's life on the request's
timeline, and a reviewer (or the organisation's setting) resolves the incident after review."""
import json
import logging
import re
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import select

from sendauth_dashboard.channels.pagerduty import signature_matches
from sendauth_dashboard.extensions import db
from sendauth_dashboard.models import (
    Delivery,
    Event,
    PagerDutyIncident,
    PagerDutySettings,
    Transaction,
    WebhookReceipt,
)
from sendauth_dashboard.services.live.messages import message_for
from sendauth_dashboard.services.reports import organisation
from sendauth_dashboard.services.requests import pagerduty_incidents, transactions
from tests.support.browser import LIVE, signed_in
from tests.support.config import engine_options
from tests.support.helpers import (
    configure_pagerduty,
    database_rows,
    dispatch,
    masked,
    send_request,
    time_passes,
)

from .fakes.pagerduty import WEBHOOK_EVENT_TYPES, WEBHOOK_SCHEMA, Answer, signature

# Made up for tests; not a secret of any PagerDuty webhook subscription.
WEBHOOK_SECRET = "whsec-Mad3UpF0rT3sts0nly-2b7c9e"


@pytest.fixture
def app_config(fake_pagerduty):
    return {"PAGERDUTY_EVENTS_URL": fake_pagerduty.url, "DELIVERY_BACKOFF_BASE_SECONDS": 120.0}


@pytest.fixture
def pagerduty(app, client, fake_pagerduty):
    """The fake PagerDuty, subscribed to the app's webhook address with the stored secret."""
    configure_pagerduty(app, webhook_secret=WEBHOOK_SECRET)
    fake_pagerduty.subscribe("/webhooks/pagerduty", WEBHOOK_SECRET, post=lambda url, data,
                             headers: client.post(url, data=data, headers=headers).status_code)
    return fake_pagerduty


@pytest.fixture
def people(app, make_user):
    return {"requestor": make_user("requestor", name="Hana Helpdesk"),
            "reviewer": make_user("reviewer", name="Rita Reviewer"),
            "user": make_user("member", name="Uma User", notify_pagerduty=True)}


@pytest.fixture
def sent(app, pagerduty, people):
    """A request whose incident PagerDuty accepted; its public id (the dedup_key)."""
    public_id = send_request(app, people["requestor"], people["user"])
    assert dispatch(app) == ["sent"]
    return public_id


def timeline(app, public_id):
    with app.app_context():
        t = db.session.scalar(select(Transaction).where(Transaction.public_id == public_id))
        return [message_for(e) for e in transactions.timeline(t)]


def incident_events(app, public_id):
    return [m for m in timeline(app, public_id) if m["kind"].startswith("pagerduty.")]


def incident_of(app, public_id):
    with app.app_context():
        t = db.session.scalar(select(Transaction).where(Transaction.public_id == public_id))
        incident = db.session.get(PagerDutyIncident, t.id)
        return t.status, incident and (incident.state, incident.acknowledged_by)


def finish(app, public_id, decision="deny"):
    with app.app_context():
        t = db.session.scalar(select(Transaction).where(Transaction.public_id == public_id))
        transactions.answer(t, decision, user=t.user)
        db.session.commit()


# -- signatures -----------------------------------------------------------------------------

def test_the_signature_is_an_hmac_sha256_of_the_raw_body_with_the_secret():
    body = b'{"event": {}}'
    good = signature("s3cret", body)
    assert signature_matches("s3cret", body, good)
    assert signature_matches("s3cret", body, f"v1=00ff, {good}")
    assert not signature_matches("s3cret", body + b" ", good)
    assert not signature_matches("other", body, good)
    assert not signature_matches("s3cret", body, good.replace("v1=", "v0="))
    assert not signature_matches("s3cret", body, "")
    assert not signature_matches(None, body, good)


@pytest.mark.both_databases
def test_a_signed_acknowledge_goes_on_the_timeline_in_words_and_the_request_stays_pending(
        app, sent, pagerduty):
    assert pagerduty.acknowledge(sent, by="Alex Oncall") == 202
    (event,) = incident_events(app, sent)
    assert event["text"] == "Acknowledged in PagerDuty by Alex Oncall"
    assert event["data"]["html_url"].startswith("https://acme.pagerduty.com/incidents/")
    assert event["data"]["number"] == 101
    assert event["data"]["incident_state"] == "acknowledged by Alex Oncall"
    assert event["transaction"]["status"] == "pending"
    assert incident_of(app, sent) == ("pending", ("acknowledged", "Alex Oncall"))


def test_every_incident_event_is_told_in_words(app, sent, pagerduty):
    for event_type in WEBHOOK_EVENT_TYPES:
        assert pagerduty.post_webhook(event_type, sent, agent="Alex Oncall",
                                      assignees=("Bo Backup",), note="Called Uma back") == 202
    assert [e["text"] for e in incident_events(app, sent)] == [
        "Incident opened in PagerDuty by Alex Oncall",
        "Acknowledged in PagerDuty by Alex Oncall",
        "Unacknowledged in PagerDuty by Alex Oncall: nobody holds it now",
        "Reassigned in PagerDuty to Bo Backup by Alex Oncall",
        "Escalated in PagerDuty to Bo Backup by Alex Oncall",
        "Resolved in PagerDuty by Alex Oncall",
        "Reopened in PagerDuty by Alex Oncall",
        "Note added in PagerDuty by Alex Oncall: Called Uma back",
    ]
    assert incident_of(app, sent) == ("pending", ("triggered", None))


def test_the_pages_show_the_incident_state_and_link_to_it(app, sent, pagerduty, people, auth):
    pagerduty.acknowledge(sent, by="Alex Oncall")
    auth.login(people["reviewer"])
    page = auth.client.get(f"/transactions/{sent}").text
    assert re.search(r'data-field="incident">acknowledged by Alex Oncall<', page)
    assert re.search(r'<a href="https://acme.pagerduty.com/incidents/\w+" rel="noopener '
                     r'noreferrer">incident #101</a>', page)
    listing = auth.client.get("/transactions/").text
    assert "PagerDuty: <span data-field=\"incident\">acknowledged by Alex Oncall</span>" in listing


@pytest.mark.both_databases
def test_a_late_older_event_goes_on_the_timeline_but_does_not_turn_the_state_back(
        app, sent, pagerduty):
    now = datetime.now(timezone.utc)
    pagerduty.post_webhook("incident.resolved", sent, occurred_at=now)
    pagerduty.post_webhook("incident.acknowledged", sent, occurred_at=now - timedelta(minutes=1))
    assert len(incident_events(app, sent)) == 2
    assert incident_of(app, sent) == ("pending", ("resolved", None))


def test_a_bad_signature_is_refused_logged_without_the_body_and_changes_nothing(
        app, sent, pagerduty, caplog):
    before = database_rows(app)
    with caplog.at_level(logging.WARNING, logger="sendauth_dashboard.pages.webhooks"):
        status = pagerduty.post_webhook("incident.acknowledged", sent, agent="Mallory Forger",
                                        signatures=[signature("not the secret", b"{}")])
    assert status == 403
    assert database_rows(app) == before
    assert "no signature matches the signing secret" in caplog.text
    assert "Mallory" not in caplog.text and sent not in caplog.text


def test_a_missing_signature_is_refused_with_401(app, sent, pagerduty, caplog):
    before = database_rows(app)
    assert pagerduty.post_webhook("incident.acknowledged", sent, signatures=[]) == 401
    assert database_rows(app) == before
    assert "no X-PagerDuty-Signature" in caplog.text


def test_without_a_stored_signing_secret_every_webhook_is_refused(app, client, sent, pagerduty):
    with app.app_context():
        db.session.get(PagerDutySettings, 1).webhook_secret_ciphertext = None
        db.session.commit()
    assert pagerduty.acknowledge(sent) == 403
    assert incident_events(app, sent) == []


def test_one_good_signature_among_several_is_enough_while_the_secret_is_rotated(
        app, sent, pagerduty):
    body = pagerduty.webhook_body("incident.acknowledged", sent)
    good = signature(WEBHOOK_SECRET, json.dumps(body).encode())
    old = signature("the secret before rotation", json.dumps(body).encode())
    assert pagerduty.post_webhook(body=body, signatures=[good, old]) == 202
    assert len(incident_events(app, sent)) == 1


@pytest.mark.both_databases
def test_a_replayed_body_is_taken_in_once_whatever_its_webhook_id(app, client, sent, pagerduty):
    body = pagerduty.webhook_body("incident.acknowledged", sent)
    for webhook_id in ("wh-1", "wh-1", "wh-2"):
        assert pagerduty.post_webhook(body=body, webhook_id=webhook_id) == 202
    raw = json.dumps(body).encode()
    without_id = client.post("/webhooks/pagerduty", data=raw, headers={
        "Content-Type": "application/json",
        "X-PagerDuty-Signature": signature(WEBHOOK_SECRET, raw)})
    assert without_id.status_code == 202
    assert len(incident_events(app, sent)) == 1, "taken in once, however often replayed"
    assert pagerduty.acknowledge(sent) == 202
    assert len(incident_events(app, sent)) == 2, "another event (its own id) is taken in"


@pytest.mark.parametrize("event_id", [None, "", 7, "x" * 129])
def test_a_webhook_whose_event_has_no_id_is_a_400(app, sent, pagerduty, event_id):
    body = pagerduty.webhook_body("incident.annotated", sent)
    if event_id is None:
        del body["event"]["id"]
    else:
        body["event"]["id"] = event_id
    raw = json.dumps(body).encode()
    response = app.test_client().post("/webhooks/pagerduty", data=raw, headers={
        "Content-Type": "application/json",
        "X-PagerDuty-Signature": signature(WEBHOOK_SECRET, raw), "X-Webhook-Id": "wh-9"})
    assert response.status_code == 400
    assert "The event has no id" in response.text
    assert incident_events(app, sent) == []


@pytest.mark.both_databases
def test_webhook_ids_older_than_three_days_are_forgotten(app, sent, pagerduty):
    with app.app_context():
        db.session.add(WebhookReceipt(webhook_id="old", received_at=datetime.now(timezone.utc)
                                      - timedelta(days=4)))
        db.session.commit()
    pagerduty.acknowledge(sent)
    with app.app_context():
        assert "old" not in db.session.scalars(select(WebhookReceipt.webhook_id)).all()


def test_an_unknown_incident_is_acknowledged_with_2xx_and_ignored(app, sent, pagerduty):
    before = len(database_rows(app)["events"])
    for key in ("a-key-of-another-service", "sendauth-test-0123456789abcdef"):
        assert pagerduty.acknowledge(key) == 202
    assert len(database_rows(app)["events"]) == before


def test_a_note_is_matched_to_the_request_by_its_incident(app, sent, pagerduty):
    pagerduty.acknowledge(sent)
    pagerduty.post_webhook("incident.annotated", sent, note="Spoke to Uma")
    assert incident_events(app, sent)[-1]["text"] == (
        "Note added in PagerDuty by Alex Oncall: Spoke to Uma")


def test_a_body_that_is_not_a_webhook_is_a_400_and_one_too_large_a_413(app, client, sent,
                                                                         pagerduty):
    raw = b"not json"
    headers = {"X-PagerDuty-Signature": signature(WEBHOOK_SECRET, raw)}
    assert client.post("/webhooks/pagerduty", data=raw, headers=headers).status_code == 400
    body = pagerduty.webhook_body("incident.annotated", sent, note="x" * (65 * 1024))
    assert pagerduty.post_webhook(body=body) == 413
    assert incident_events(app, sent) == []


@pytest.fixture
def busy_timeout(app_config, database_url):
    """A write waits at most 0.1 s for another's lock before the database counts as busy."""
    app_config["SQLITE_BUSY_TIMEOUT_SECONDS"] = 0.1
    if database_url.startswith("postgresql"):
        app_config["SQLALCHEMY_ENGINE_OPTIONS"] = engine_options(
            connect_args={"options": "-c lock_timeout=100"})


class LockHolder:
    """Another connection holding the lock a webhook's write needs, until ``release()``."""

    def __init__(self, url):
        if url.get_backend_name() == "sqlite":
            self.connection = sqlite3.connect(url.database, isolation_level=None)
            self.connection.execute("BEGIN IMMEDIATE")
        else:
            import psycopg

            self.connection = psycopg.connect(host=url.host, port=url.port or 5432,
                                              user=url.username, dbname=url.database)
            self.connection.execute("LOCK TABLE webhook_receipts IN ACCESS EXCLUSIVE MODE")
        self.held = True

    def release(self):
        if self.held:
            self.connection.rollback()
            self.held = False

    def close(self):
        self.release()
        self.connection.close()


@pytest.mark.both_databases
def test_a_webhook_that_cannot_be_stored_now_gets_a_503_and_its_retry_is_taken_in(
        busy_timeout, app, sent, pagerduty, client):
    with app.app_context():
        lock = LockHolder(db.engine.url)

    def post(url, data, headers):
        status = client.post(url, data=data, headers=headers).status_code
        lock.release()  # the database is free again for PagerDuty's retry
        return status

    pagerduty.subscribe("/webhooks/pagerduty", WEBHOOK_SECRET, post=post)
    try:
        assert pagerduty.acknowledge(sent) == 202
    finally:
        lock.close()
    assert [status for _, status in pagerduty.webhook_answers] == [503, 202]
    assert len({webhook_id for webhook_id, _ in pagerduty.webhook_answers}) == 1
    assert len(incident_events(app, sent)) == 1


SPECS = Path(__file__).resolve().parent / "fakes" / "specs"


def _webhooks_section(facts):
    return facts.read_text().split("## Webhooks v3", 1)[1].split("\n## ", 1)[0]


def test_the_fakes_webhook_schema_matches_the_facts_file():
    """The fake posts what the facts file says PagerDuty posts ("Webhooks v3"). The file is
    vendored beside the fakes' other specs, so every clone checks it; where the team's shared
    folder sits beside the repository (DESIGN.md: ../shared/), the copy must still match it."""
    section = _webhooks_section(SPECS / "pagerduty-events-v2.md")
    shared = Path(__file__).resolve().parents[2] / "shared" / "spec" / "pagerduty-events-v2.md"
    assert not shared.exists() or _webhooks_section(shared) == section, (
        f"{shared} changed: copy it to tests/fakes/specs/ and check the fake against it")
    event = WEBHOOK_SCHEMA["properties"]["event"]
    listed = set(re.findall(r"`(incident\.\w+)`", section))
    assert listed and listed <= set(event["properties"]["event_type"]["enum"])
    fields = re.search(r'\{"event": \{([^}]*)\}\}', section).group(1)
    assert set(re.findall(r'"(\w+)"', fields)) == set(event["required"])
    assert "incident_key" in WEBHOOK_SCHEMA["properties"]["event"]["properties"]["data"][
        "oneOf"][0]["required"]
    assert "X-PagerDuty-Signature" in section and "HMAC-SHA256" in section


# -- resolving --------------------------------------------------------------------------------

def press_resolve(auth, public_id):
    return auth.post(f"/transactions/{public_id}/resolve-incident",
                     token_page=f"/transactions/{public_id}")


def test_a_reviewer_resolves_a_finished_requests_incident_through_the_outbox_and_a_429_is_retried(
        app, sent, pagerduty, people, auth):
    finish(app, sent)
    auth.login(people["reviewer"])
    assert "Resolve the PagerDuty incident" in auth.client.get(f"/transactions/{sent}").text
    response = press_resolve(auth, sent)
    assert response.status_code == 302
    pagerduty.answer_next(Answer.rate_limited())
    assert dispatch(app) == ["retrying"]
    time_passes(app)
    assert dispatch(app) == ["sent"]
    (resolve,) = pagerduty.resolves
    assert resolve["dedup_key"] == sent and resolve["event_action"] == "resolve"
    texts = [m["text"] for m in timeline(app, sent)]
    assert "Rita Reviewer asked PagerDuty to resolve the incident" in texts
    assert any(t.startswith("PagerDuty: resolving the incident, attempt 1 failed (HTTP 429")
               for t in texts)
    assert "PagerDuty accepted the resolve of the incident (attempt 2, HTTP 202)" in texts
    with app.app_context():
        assert db.session.scalar(select(Transaction.status)) == "denied"
    again = press_resolve(auth, sent)
    assert "PagerDuty has accepted the resolve already" in auth.client.get(
        again.headers["Location"]).text
    assert dispatch(app) == []


def test_a_pending_request_or_one_without_an_incident_cannot_be_resolved(
        app, sent, pagerduty, people, auth):
    auth.login(people["reviewer"])
    response = press_resolve(auth, sent)
    assert "The request is still pending" in auth.client.get(response.headers["Location"]).text
    never_sent = send_request(app, people["requestor"], people["user"])
    finish(app, never_sent)  # before the dispatcher sent its trigger: no incident
    assert "Resolve the PagerDuty incident" not in auth.client.get(
        f"/transactions/{never_sent}").text
    response = press_resolve(auth, never_sent)
    assert "No PagerDuty incident was opened for this request" in auth.client.get(
        response.headers["Location"]).text
    assert dispatch(app) == [] and pagerduty.resolves == []
    with app.app_context():
        assert db.session.scalar(select(Delivery).where(Delivery.action == "resolve")) is None


def test_a_resolve_waits_for_its_trigger_still_on_its_way(app, pagerduty, people):
    public_id = send_request(app, people["requestor"], people["user"])
    with app.app_context():
        db.session.execute(db.update(Delivery).values(status="sending", attempts=1,
                                                      claimed_by="elsewhere"))
        organisation.update(resolve_pagerduty_incidents=True, actor=None)
        db.session.commit()
    finish(app, public_id)
    assert dispatch(app) == ["waiting"]
    assert pagerduty.resolves == []


@pytest.mark.parametrize("on", [False, True])
def test_the_organisation_setting_resolves_incidents_when_requests_become_final(
        app, pagerduty, people, on):
    with app.app_context():
        organisation.update(resolve_pagerduty_incidents=on, actor=None)
        db.session.commit()
    public_id = send_request(app, people["requestor"], people["user"])
    assert dispatch(app) == ["sent"]
    finish(app, public_id, "deny")
    assert dispatch(app) == (["sent"] if on else [])
    assert [r["dedup_key"] for r in pagerduty.resolves] == ([public_id] if on else [])
    kinds = [m["kind"] for m in timeline(app, public_id)]
    assert ("pagerduty.resolve_requested" in kinds) is on


def test_the_organisation_page_turns_auto_resolve_on_off_by_default(app, as_admin):
    page = as_admin.client.get("/settings/organisation").text
    assert 'name="resolve_pagerduty_incidents"' in page
    assert not re.search(r'name="resolve_pagerduty_incidents"[^>]*checked', page)
    as_admin.post("/settings/organisation", {"require_passkey": "y",
                                             "resolve_pagerduty_incidents": "y"})
    with app.app_context():
        assert organisation.settings().resolve_pagerduty_incidents
        (event,) = db.session.scalars(select(Event).where(
            Event.kind == "settings.organisation_changed")).all()
        assert event.data["changes"] == [
            "PagerDuty incidents are resolved when the request is final"]


# -- the settings page ----------------------------------------------------------------------

def test_the_settings_page_keeps_the_signing_secret_masked_and_shows_the_address(
        app, as_admin, fake_pagerduty):
    configure_pagerduty(app)
    page = as_admin.client.get("/settings/pagerduty").text
    assert "http://sendauth.test/webhooks/pagerduty" in page
    as_admin.post("/settings/pagerduty", {"enabled": "y", "severity": "critical",
                                          "webhook_secret": WEBHOOK_SECRET},
                  token_page="/settings/pagerduty")
    page = as_admin.client.get("/settings/pagerduty").text
    assert WEBHOOK_SECRET not in page and masked(WEBHOOK_SECRET) in page
    with app.app_context():
        row = db.session.get(PagerDutySettings, 1)
        assert WEBHOOK_SECRET not in row.webhook_secret_ciphertext
        assert row.integration_key_ciphertext is not None
    as_admin.post("/settings/pagerduty/remove-signing-secret", token_page="/settings/pagerduty")
    with app.app_context():
        row = db.session.get(PagerDutySettings, 1)
        assert row.webhook_secret_ciphertext is None and row.enabled
        assert row.integration_key_ciphertext is not None


def test_the_test_incident_is_resolved_from_the_settings_page(app, as_admin, fake_pagerduty):
    configure_pagerduty(app)
    assert "Resolve the test incident" not in as_admin.client.get("/settings/pagerduty").text
    as_admin.post("/settings/pagerduty/test", token_page="/settings/pagerduty")
    (incident,) = fake_pagerduty.incidents.values()
    assert "Resolve the test incident" in as_admin.client.get("/settings/pagerduty").text
    response = as_admin.post("/settings/pagerduty/resolve-test", token_page="/settings/pagerduty")
    page = as_admin.client.get(response.headers["Location"]).text
    assert "PagerDuty accepted the resolve of the test incident" in page
    assert [r["dedup_key"] for r in fake_pagerduty.resolves] == [incident["dedup_key"]]
    assert "Resolve the test incident" not in page
    assert "resolved the test incident: accepted" in page


# -- in a browser ---------------------------------------------------------------------------

@pytest.mark.browser
def test_an_acknowledge_reaches_a_reviewers_pages_live_and_the_reviewer_resolves(
        browser, live_server, fake_pagerduty):
    from playwright.sync_api import expect

    from tests.support.accounts import create_user

    app = live_server.app
    configure_pagerduty(app, webhook_secret=WEBHOOK_SECRET)
    fake_pagerduty.subscribe(f"{live_server.url}/webhooks/pagerduty", WEBHOOK_SECRET)
    requestor = create_user(app, "requestor", "requestor@example.com", "Hana Helpdesk")
    reviewer = create_user(app, "reviewer", "reviewer@example.com", "Rita Reviewer")
    user = create_user(app, "member", "uma@example.com", "Uma User", notify_pagerduty=True)
    public_id = send_request(app, requestor, user)

    # The server's dispatcher (started with it) opens the incident.
    listing = signed_in(browser, live_server, reviewer, "/transactions/")
    fake_pagerduty.wait_for(lambda fake: len(fake.incidents) == 1)
    page = listing.context.new_page()
    page.goto(f"{live_server.url}/transactions/{public_id}")
    asker = signed_in(browser, live_server, requestor, f"/transactions/{public_id}")
    for watching in (listing, page, asker):
        expect(watching.locator("[data-live-indicator]")).to_have_attribute(
            "data-state", "live", timeout=LIVE)
    expect(page.locator("[data-timeline]")).to_contain_text(
        "PagerDuty accepted the notification", timeout=LIVE)

    assert fake_pagerduty.acknowledge(public_id, by="Alex Oncall") == 202
    expect(page.locator("[data-timeline]")).to_contain_text(
        "Acknowledged in PagerDuty by Alex Oncall", timeout=LIVE)
    expect(page.locator("[data-timeline] a", has_text="incident #")).to_have_attribute(
        "href", re.compile(r"^https://acme\.pagerduty\.com/incidents/"))
    expect(page.locator('[data-live-transaction] [data-field="incident"]')).to_have_text(
        "acknowledged by Alex Oncall", timeout=LIVE)
    expect(listing.locator(f'tr[data-transaction-id="{public_id}"] [data-field="incident"]')
           ).to_have_text("acknowledged by Alex Oncall", timeout=LIVE)
    expect(asker.locator("[data-timeline]")).to_contain_text(
        "Acknowledged in PagerDuty by Alex Oncall", timeout=LIVE)
    expect(asker.get_by_role("button", name="Resolve the PagerDuty incident")).to_have_count(0)

    resolve = page.get_by_role("button", name="Resolve the PagerDuty incident")
    expect(resolve).to_be_hidden()
    finish(app, public_id)
    expect(resolve).to_be_visible(timeout=LIVE)
    resolve.click()
    expect(page.locator(".flash-success")).to_contain_text("Resolving the PagerDuty incident")
    fake_pagerduty.wait_for(lambda fake: len(fake.resolves) == 1)
    assert fake_pagerduty.resolves[0]["dedup_key"] == public_id
    expect(page.locator("[data-timeline]")).to_contain_text(
        "PagerDuty accepted the resolve of the incident", timeout=LIVE)


@pytest.mark.browser
def test_the_pagerduty_settings_page_fits_a_phone(browser, live_server):
    from tests.support.accounts import create_user

    admin = create_user(live_server.app, "admin", "admin@example.com", "Ada Admin")
    page = signed_in(browser, live_server, admin)
    page.set_viewport_size({"width": 375, "height": 740})
    page.goto(f"{live_server.url}/settings/pagerduty")
    assert page.locator(".webhook-url").inner_text().endswith("/webhooks/pagerduty")
    assert page.evaluate("document.documentElement.scrollWidth") <= 375


def test_a_resolve_for_a_disabled_integration_is_cancelled_in_words_but_a_test_one_is_sent(
        app, sent, pagerduty, as_admin):
    finish(app, sent)
    with app.app_context():
        organisation.update(resolve_pagerduty_incidents=True, actor=None)
        db.session.commit()
    configure_pagerduty(app, enabled=False)
    assert dispatch(app) == []  # the request was final before the setting: nothing queued
    with app.app_context():
        t = db.session.scalar(select(Transaction))
        assert pagerduty_incidents.request_resolve(t, "denied", actor=None) is None
        db.session.commit()
    assert dispatch(app) == ["cancelled"]
    assert timeline(app, sent)[-1]["text"] == (
        "PagerDuty: the incident was not resolved: the PagerDuty integration is disabled")
    as_admin.post("/settings/pagerduty/test", token_page="/settings/pagerduty")
    as_admin.post("/settings/pagerduty/resolve-test", token_page="/settings/pagerduty")
    assert [r["dedup_key"].startswith("sendauth-test-") for r in pagerduty.resolves] == [True]
