"""The audit log: admins read who changed what, filter it, page through it and export it."""
import csv
import io
import re
from datetime import datetime, timezone

import pytest
from sqlalchemy import update

from sendauth_dashboard.core import event_log
from sendauth_dashboard.extensions import db
from sendauth_dashboard.models import Event
from sendauth_dashboard.pages.csv_export import cell
from tests.support.helpers import OTHER_TEST_KEY, TEST_KEY, configure_pagerduty, send_request

pytestmark = pytest.mark.both_databases


def rows_of(page):
    return page.text.count('<tr data-event-id=')


def csv_rows(response):
    return list(csv.reader(io.StringIO(response.get_data(as_text=True))))


def test_admin_finds_the_key_change_but_never_the_key(app, client, as_admin):
    configure_pagerduty(app)
    response = as_admin.post("/settings/pagerduty", {
        "enabled": "y", "integration_key": OTHER_TEST_KEY, "severity": "error"},
        token_page="/settings/pagerduty")
    assert response.status_code == 302
    page = client.get("/settings/audit")
    assert page.status_code == 200, page.text
    assert "Ada Admin changed the PagerDuty settings: integration key replaced" in page.text
    download = client.get("/settings/audit?format=csv")
    assert download.headers["Content-Type"].startswith("text/csv")
    for text in (page.text, download.get_data(as_text=True)):
        assert TEST_KEY not in text and OTHER_TEST_KEY not in text


def test_transaction_events_stay_on_their_transactions_page(app, client, as_admin, make_user):
    configure_pagerduty(app)
    requestor = make_user("requestor", name="Hana Helpdesk")
    user = make_user("member", notify_pagerduty=True)
    send_request(app, requestor, user)
    page = client.get("/settings/audit")
    assert "sent the request" not in page.text
    assert "created the account" in page.text


def test_filters_by_kind_actor_and_day(app, client, as_admin, admin, make_user):
    make_user("member", email="mona@example.com", name="Mona Member")
    as_admin.post("/settings/organisation", {}, token_page="/settings/organisation")
    with app.app_context():
        db.session.execute(update(Event).where(Event.kind == "settings.organisation_changed")
                           .values(created_at=datetime(2026, 3, 31, 23, 59, tzinfo=timezone.utc)))
        db.session.commit()
    organisation = client.get("/settings/audit?kind=organisation")
    assert rows_of(organisation) == 1 and "changed the organisation" in organisation.text
    users = client.get("/settings/audit?kind=users")
    assert "mona@example.com" in users.text and "changed the organisation" not in users.text
    # her passkey, her sign-in, the rule
    assert rows_of(client.get("/settings/audit?actor=ADA")) == 3
    assert rows_of(client.get("/settings/audit?actor=nobody")) == 0
    assert rows_of(client.get("/settings/audit?since=2026-03-31&until=2026-03-31")) == 1
    assert rows_of(client.get("/settings/audit?until=2026-03-30")) == 0


def test_a_wrong_filter_says_what_to_type(client, as_admin):
    page = client.get("/settings/audit?since=31/03/2026")
    assert page.status_code == 400
    assert "is not a date: write it as YYYY-MM-DD" in page.text
    page = client.get("/settings/audit?since=2026-04-02&until=2026-04-01")
    assert page.status_code == 400 and "swap them" in page.text
    assert client.get("/settings/audit?kind=%3Cscript%3E").status_code == 400
    assert client.get("/settings/audit?before=99999999999999999999999").status_code == 200


def test_pages_newest_first_and_exports_every_row(app, client, as_admin, admin):
    with app.app_context():
        for n in range(60):
            event_log.record("user.password_changed", data={"email": f"p{n}@example.com"})
        event_log.record("user.created", data={"email": "=HYPERLINK(1)", "role": "member"})
        db.session.commit()
    first = client.get("/settings/audit?kind=users")
    assert rows_of(first) == 50
    assert first.text.index("=HYPERLINK(1)") < first.text.index("p59@example.com")
    older = re.search(r'href="/settings/audit\?before=(\d+)', first.text).group(1)
    second = client.get(f"/settings/audit?kind=users&before={older}")
    assert rows_of(second) == 63 - 50  # the admin's own account was created too, and signed in
    assert "p0@example.com" in second.text
    rows = csv_rows(client.get("/settings/audit?kind=users&format=csv"))
    assert rows[0] == ["id", "time_utc", "kind", "actor_email", "actor_name", "what"]
    assert len(rows) == 1 + 63
    assert rows[1][5] == "The system created the account =HYPERLINK(1) as member"


def test_a_cell_a_spreadsheet_would_run_is_text():
    assert [cell(v) for v in ("=1+1", "-3", "@SUM(A1)", "ok", None)] == [
        "'=1+1", "-3", "'@SUM(A1)", "ok", ""]


def test_every_kind_of_event_has_its_words():
    """A kind named in core.event_kinds, or made for a channel, has a line in the words table;
    the table has no line for a kind nothing records."""
    from sendauth_dashboard import channels
    from sendauth_dashboard.core import event_kinds
    from sendauth_dashboard.services.live import words
    from sendauth_dashboard.services.requests import pagerduty_incidents

    named = {value for name, value in vars(event_kinds).items()
             if name.isupper() and isinstance(value, str)}
    per_channel = {kind for name in channels.names() for kind in event_kinds.of_channel(name)}
    assert named | per_channel == set(words.WORDS)
    assert set(event_kinds.PAGERDUTY_WEBHOOK) == set(pagerduty_incidents.EVENT_TYPES)
    assert words.describe("kind.nobody_records", {}) == "Nobody records"
