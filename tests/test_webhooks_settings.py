"""Settings → Webhooks and /api/v1/webhook-endpoints: an admin adds an endpoint, sees its
secret once, rotates it, sends a test, reads the log and replays."""
import re

import pytest

from sendauth_dashboard.core import event_kinds as kinds
from sendauth_dashboard.extensions import db
from sendauth_dashboard.models import Event, WebhookEndpoint, WebhookMessage
from sendauth_dashboard.services.webhooks.sender import Sender
from tests.fakes.receiver import WebhookReceiver
from tests.support.api import Api, make_key
from tests.support.helpers import database_at_rest, database_rows

SECRET = re.compile(r"whsec_[A-Za-z0-9+/=]{40,}")
FORM = {"url": "https://tickets.example.com/hooks/sendauth", "description": "Jira",
        "events": ["transaction.verified", "transaction.denied"], "enabled": "y"}


def test_an_admin_adds_an_endpoint_and_sees_its_secret_once(app, as_admin):
    page = as_admin.post("/settings/webhooks", data=FORM, token_page="/settings/webhooks")
    assert page.status_code == 200
    (secret,) = set(SECRET.findall(page.text))
    with app.app_context():
        endpoint = db.session.scalar(db.select(WebhookEndpoint))
        assert endpoint.event_types == FORM["events"]
        assert db.session.scalar(db.select(Event.kind).where(
            Event.kind == kinds.WEBHOOK_ENDPOINT_CREATED))
    assert secret.encode() not in database_at_rest(app)
    for later in ("/settings/webhooks", f"/settings/webhooks/{endpoint.id}"):
        assert secret not in as_admin.client.get(later).text
    rotated = as_admin.post(f"/settings/webhooks/{endpoint.id}/rotate",
                            token_page=f"/settings/webhooks/{endpoint.id}")
    (new,) = set(SECRET.findall(rotated.text))
    assert new != secret and "keeps signing beside this one" in rotated.text
    audit = as_admin.client.get("/settings/audit?kind=webhooks").text
    assert "added the webhook endpoint" in audit and "rotated the secret" in audit
    assert secret not in audit and new not in audit


@pytest.mark.parametrize("url, words", [
    ("http://tickets.example.com/hooks", "https:// only"),
    ("https://169.254.169.254/latest/meta-data", "link-local"),
    ("https://0x7f.1/", "unusual form"),
])
def test_an_address_webhooks_may_not_go_to_is_refused_on_the_form(app, as_admin, url, words):
    before = database_rows(app)
    page = as_admin.post("/settings/webhooks", data={**FORM, "url": url},
                         token_page="/settings/webhooks")
    assert page.status_code == 400 and words in page.text
    assert database_rows(app) == before


def test_the_api_manages_endpoints_and_replays_with_the_same_id(app, client, admin):
    app.config["WEBHOOKS_ALLOW_PRIVATE_NETWORKS"] = True
    receiver = WebhookReceiver().start()
    try:
        api = Api(client, make_key(app, admin, scopes=["webhooks:manage"]))
        made = api.post("/api/v1/webhook-endpoints", json={
            "url": receiver.base_url + "/hook", "events": ["user.created"]})
        assert made.status_code == 201, made.json
        receiver.secrets.append(made.json["secret"])
        endpoint_id = made.json["endpoint"]["id"]
        listed = api.get("/api/v1/webhook-endpoints")
        assert made.json["secret"] not in listed.text
        assert listed.json["items"][0]["id"] == endpoint_id
        assert api.post(f"/api/v1/webhook-endpoints/{endpoint_id}/test").status_code == 202
        Sender(app, name="api-test").run_until_idle()
        (delivery,) = api.get(f"/api/v1/webhook-endpoints/{endpoint_id}/deliveries").json["items"]
        assert (delivery["type"], delivery["status"]) == ("webhook.test", "sent")
        replay = api.post(f"/api/v1/webhook-endpoints/{endpoint_id}/deliveries/"
                          f"{delivery['id']}/replay")
        assert replay.status_code == 202
        Sender(app, name="api-test").run_until_idle()
        assert [v.msg_id for v in receiver.verified] == [delivery["webhook_id"]] * 2
        changed = api.patch(f"/api/v1/webhook-endpoints/{endpoint_id}",
                            json={"enabled": False})
        assert changed.status_code == 200 and changed.json["enabled"] is False
        refused = api.patch(f"/api/v1/webhook-endpoints/{endpoint_id}",
                            json={"url": "ftp://x.example/"})
        assert refused.status_code == 422
        assert api.delete(f"/api/v1/webhook-endpoints/{endpoint_id}").status_code == 204
        with app.app_context():
            assert db.session.scalar(db.select(db.func.count(WebhookMessage.id))) == 0
    finally:
        receiver.stop()


def test_the_endpoint_page_shows_health_and_the_delivery_log(app, as_admin):
    app.config["WEBHOOKS_ALLOW_PRIVATE_NETWORKS"] = True
    receiver = WebhookReceiver().start()
    try:
        page = as_admin.post("/settings/webhooks", data={**FORM, "url": receiver.base_url},
                             token_page="/settings/webhooks")
        receiver.secrets += SECRET.findall(page.text)[:1]
        with app.app_context():
            endpoint_id = db.session.scalar(db.select(WebhookEndpoint.id))
        here = f"/settings/webhooks/{endpoint_id}"
        assert as_admin.post(f"{here}/test", token_page=here).status_code == 302
        Sender(app, name="page-test").run_until_idle()
        shown = as_admin.client.get(here).text
        assert "webhook.test" in shown and "Success" in shown and "204" in shown
        assert len(receiver.verified) == 1
    finally:
        receiver.stop()


def test_an_endpoint_turned_off_is_shown_to_admins_on_the_home_page(app, as_admin):
    from sendauth_dashboard.models import utcnow
    from sendauth_dashboard.services.webhooks import endpoints, queue

    with app.app_context():
        endpoint, _ = endpoints.create(FORM["url"], "", FORM["events"], True, actor=None)
        db.session.flush()
        queue.disable(endpoint, "it answered 410 Gone", utcnow())
        db.session.commit()
    home = as_admin.client.get("/").text
    assert 'data-figure="webhooks"' in home and "410 Gone" in home
    assert "1 failing or turned off" in home
