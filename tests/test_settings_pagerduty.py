"""The PagerDuty settings page, as an admin uses it."""
import logging

import pytest
from sqlalchemy import select

from sendauth_dashboard import channels
from sendauth_dashboard.extensions import db
from sendauth_dashboard.models import Event, PagerDutySettings
from tests.support.helpers import OTHER_TEST_KEY, TEST_KEY, database_at_rest, masked

from .fakes.pagerduty import Answer


@pytest.fixture
def app_config(fake_pagerduty):
    return {"PAGERDUTY_EVENTS_URL": fake_pagerduty.url, "PAGERDUTY_READ_TIMEOUT": 5.0}


def save(as_admin, **fields):
    form = {"severity": "critical"}
    form.update(fields)
    if form.get("enabled") is False:
        del form["enabled"]
    return as_admin.post("/settings/pagerduty", form)


def page(client):
    return client.get("/settings/pagerduty").text


def audit(app):
    with app.app_context():
        return [e.data for e in db.session.scalars(
            select(Event).where(Event.kind == "settings.pagerduty_changed").order_by(Event.id))]


def stored(app):
    with app.app_context():
        settings = channels.channel("pagerduty").settings_row()
        return settings.enabled, settings.integration_key_ciphertext, settings.severity


def test_a_new_page_is_disabled_with_severity_critical_and_not_yet_invoked(client, as_admin):
    html = page(client)
    assert '<option selected value="critical">' in html
    assert 'name="enabled" type="checkbox" value="y">' in html
    assert "Not yet invoked" in html


@pytest.mark.both_databases
def test_opening_the_page_or_a_refused_save_writes_no_settings_row(app, client, as_admin):
    # A read, or a save that is refused, must leave the database as it was (on SQLite a
    # savepoint's release once committed the default row a page view created).
    page(client)
    save(as_admin, enabled="y")
    with app.app_context():
        assert db.session.scalars(select(PagerDutySettings)).all() == []


@pytest.mark.both_databases
def test_admin_saves_a_key_and_severity_and_sees_only_a_mask(app, client, as_admin):
    response = save(as_admin, enabled="y", integration_key=f"  {TEST_KEY} ", severity="warning")
    assert response.status_code == 302
    html = page(client)
    assert "Saved: integration key added; severity critical → warning; integration enabled." in html
    assert "•" * 28 + "AB12" in html
    assert TEST_KEY not in html
    enabled, ciphertext, severity = stored(app)
    assert enabled and severity == "warning"
    assert TEST_KEY not in ciphertext


@pytest.mark.parametrize("key, message", [
    (TEST_KEY[:31], "yours has 31 characters"),
    (TEST_KEY[:31] + "-", "it contains &#39;-&#39;"),
    ("x" * 2000, "far longer than an integration key"),
])
def test_a_malformed_key_is_refused_beside_the_field_and_nothing_is_saved(app, as_admin, key,
                                                                          message):
    response = save(as_admin, enabled="y", integration_key=key)
    assert response.status_code == 400
    assert message in response.text
    assert 'id="integration_key-errors"' in response.text
    assert key not in response.text
    assert stored(app) == (False, None, "critical")
    assert audit(app) == []


def test_enabling_with_no_key_stored_is_refused(app, as_admin):
    response = save(as_admin, enabled="y")
    assert response.status_code == 400
    assert "Paste an integration key before enabling PagerDuty" in response.text
    assert stored(app)[0] is False


def test_a_made_up_severity_is_refused(app, as_admin):
    response = save(as_admin, integration_key=TEST_KEY, severity="urgent")
    assert response.status_code == 400
    assert stored(app) == (False, None, "critical")


def test_admin_can_replace_key_without_seeing_old_one(app, client, as_admin):
    save(as_admin, enabled="y", integration_key=TEST_KEY)
    html = page(client)
    assert TEST_KEY not in html and 'value="' + TEST_KEY not in html
    save(as_admin, enabled="y", integration_key=OTHER_TEST_KEY)
    html = page(client)
    assert masked(OTHER_TEST_KEY) in html and masked(TEST_KEY) not in html
    assert audit(app)[-1] == {"changes": ["integration key replaced"]}


def test_saving_with_the_key_field_empty_keeps_the_stored_key(app, as_admin):
    save(as_admin, enabled="y", integration_key=TEST_KEY)
    before = stored(app)[1]
    save(as_admin, enabled="y", integration_key="", severity="info")
    assert stored(app) == (True, before, "info")
    assert audit(app)[-1] == {"changes": ["severity critical → info"]}


def test_removing_the_key_also_disables(app, client, as_admin):
    save(as_admin, enabled="y", integration_key=TEST_KEY)
    as_admin.post("/settings/pagerduty/remove-key")
    assert stored(app) == (False, None, "critical")
    assert "Removed the integration key and disabled PagerDuty." in page(client)
    assert audit(app)[-1] == {"changes": ["integration key removed", "integration disabled"]}


def test_disabling_is_unchecking_and_saving(app, as_admin):
    save(as_admin, enabled="y", integration_key=TEST_KEY)
    save(as_admin, enabled=False)
    assert stored(app)[0] is False
    assert audit(app)[-1] == {"changes": ["integration disabled"]}


def test_the_key_is_encrypted_in_the_database(app, as_admin):
    save(as_admin, enabled="y", integration_key=TEST_KEY)
    ciphertext = stored(app)[1]
    raw = database_at_rest(app)
    assert ciphertext.encode() in raw, "read what the app wrote"
    assert TEST_KEY.encode() not in raw


def test_the_test_button_sends_a_real_trigger_and_reports_acceptance(
        app, client, as_admin, fake_pagerduty):
    save(as_admin, integration_key=TEST_KEY, severity="error")
    as_admin.post("/settings/pagerduty/test")
    event = fake_pagerduty.accepted[-1]
    assert event["routing_key"] == TEST_KEY
    assert event["payload"]["severity"] == "error"
    assert event["payload"]["summary"].startswith("[TEST]")
    html = page(client)
    assert "PagerDuty accepted the test incident" in html
    assert 'data-state="success"' in html and "Last incident accepted" in html


def test_the_test_button_reports_pagerdutys_exact_error(app, client, as_admin, fake_pagerduty):
    save(as_admin, integration_key=TEST_KEY)
    fake_pagerduty.answer_next(Answer.invalid_routing_key())
    as_admin.post("/settings/pagerduty/test")
    html = page(client)
    assert "PagerDuty refused the test incident: HTTP 400: Invalid routing key." in html
    assert 'data-state="error"' in html
    assert "<code>HTTP 400: Invalid routing key</code>" in html


def test_the_status_shows_the_errors_list_of_a_400(client, as_admin, fake_pagerduty):
    save(as_admin, integration_key=TEST_KEY)
    fake_pagerduty.answer_next(Answer.invalid_event("'payload.source' is missing or blank"))
    as_admin.post("/settings/pagerduty/test")
    assert "HTTP 400: &#39;payload.source&#39; is missing or blank" in page(client)


def test_the_test_button_without_a_key_says_to_paste_one(client, as_admin, fake_pagerduty):
    as_admin.post("/settings/pagerduty/test")
    assert "Paste an integration key to send a test." in page(client)
    assert fake_pagerduty.received == []


def test_replacing_the_key_resets_the_status_to_not_yet_invoked(client, as_admin, fake_pagerduty):
    save(as_admin, integration_key=TEST_KEY)
    as_admin.post("/settings/pagerduty/test")
    save(as_admin, integration_key=OTHER_TEST_KEY)
    assert 'data-state="never"' in page(client)


def test_the_key_is_never_in_a_log_an_event_or_an_error(app, client, as_admin, fake_pagerduty,
                                                        caplog):
    caplog.set_level(logging.DEBUG)
    fake_pagerduty.answer_next(Answer(400, f"Unknown key {TEST_KEY}", content_type="text/plain"))
    save(as_admin, enabled="y", integration_key=TEST_KEY)
    as_admin.post("/settings/pagerduty/test")
    html = page(client)
    assert TEST_KEY not in html
    assert "Unknown key " + "•" * 28 + "AB12" in html
    assert TEST_KEY not in caplog.text
    with app.app_context():
        for event in db.session.scalars(select(Event)):
            assert TEST_KEY not in repr(event.data)


def test_other_roles_get_403_and_no_link(client, auth, make_user):
    auth.login(make_user("reviewer"))
    assert client.get("/settings/pagerduty").status_code == 403
    assert 'href="/settings/pagerduty"' not in client.get("/").text


def test_a_key_that_cannot_be_decrypted_is_reported_not_a_crash(app, client, as_admin):
    from sendauth_dashboard.core.secrets import secret_box_for
    from sendauth_dashboard.runtime import runtime

    save(as_admin, enabled="y", integration_key=TEST_KEY)
    runtime(app).secret_box = secret_box_for({"SECRET_KEY": "a different secret key"})
    html = page(client)
    assert "cannot be decrypted" in html and "Enter it again" in html
    as_admin.post("/settings/pagerduty/test")
    assert "cannot be decrypted" in page(client)


def test_a_malformed_key_in_the_form_is_answered_beside_the_test_button(client, as_admin,
                                                                       fake_pagerduty):
    response = as_admin.post("/settings/pagerduty/test",
                             {"integration_key": TEST_KEY[:31], "severity": "critical"})
    html = client.get(response.headers["Location"]).text
    beside = html[html.index('id="test-result"'):html.index('id="audit-heading"')]
    assert ("The integration key must be 32 letters or digits; yours has 31 characters."
            in beside)
    assert fake_pagerduty.received == []
