"""A transaction's page: deliveries at a glance, a timeline of what mattered, asking before
cancelling; and the menu's groups."""
import re
from datetime import timedelta

import pytest
from sqlalchemy import update

from sendauth_dashboard.extensions import db
from sendauth_dashboard.models import Delivery, utcnow
from sendauth_dashboard.services.outbox.dispatcher import Dispatcher
from sendauth_dashboard.services.requests import delivery_report
from tests.support.helpers import configure_pagerduty, send_request

from .fakes.pagerduty import Answer


@pytest.fixture
def people(app, make_user):
    configure_pagerduty(app)
    return (make_user("requestor", name="Hana Helpdesk"),
            make_user("member", name="Uma User", email="uma@example.com", notify_pagerduty=True))


def retry_now(app):
    with app.app_context():
        db.session.execute(update(Delivery).values(next_attempt_at=utcnow()))
        db.session.commit()


def deliveries_table(page):
    return re.search(r'<table class="deliveries".*?</table>', page, re.S).group(0)


def test_the_deliveries_table_has_a_row_per_channel_with_the_providers_answer_in_words(
        app, client, auth, people, fake_pagerduty):
    app.config["PAGERDUTY_EVENTS_URL"] = fake_pagerduty.url
    public_id = send_request(app, *people)
    auth.login(people[0])
    table = deliveries_table(client.get(f"/transactions/{public_id}").text)
    assert 'data-channel="pagerduty" data-state="queued"' in table
    assert "Waiting to send" in table

    for _ in range(3):
        fake_pagerduty.answer_next(Answer.server_error())
        Dispatcher(app).run_until_idle()
        retry_now(app)
    table = deliveries_table(client.get(f"/transactions/{public_id}").text)
    assert 'data-cell="attempts">3<' in table
    assert "HTTP 500: Internal Server Error" in table
    assert "<time datetime=" in table  # the next try

    Dispatcher(app).run_until_idle()
    page = client.get(f"/transactions/{public_id}").text
    table = deliveries_table(page)
    assert 'data-state="sent"' in table and "Accepted" in table
    assert "PagerDuty accepted the notification (HTTP 202 Accepted)" in table
    assert re.search(r'data-cell="took">\d', table)
    # The timeline has the first failure and the outcome, not every retry.
    timeline = page.split("data-timeline", 1)[1]
    assert timeline.count("failed (HTTP 500") == 1
    assert "PagerDuty accepted the notification (HTTP 202 Accepted, attempt 4)" in timeline
    assert "HTTP None" not in page


@pytest.mark.parametrize("channel, status, words", [
    ("pagerduty", 202, "PagerDuty accepted the notification (HTTP 202 Accepted)"),
    ("email", None, "The mail server accepted the email"),
    ("sms", 201, "Twilio accepted the text message (HTTP 201 Created)"),
    ("slack", 200, "Slack delivered the direct message (HTTP 200 OK)"),
    ("pagerduty", 299, "PagerDuty accepted the notification (HTTP 299)"),
])
def test_each_channel_says_what_its_provider_answered(channel, status, words):
    assert delivery_report.accepted_words(channel, status) == words


def test_a_delivery_event_carries_its_row_for_pages_updating_live(app):
    created = utcnow()
    row = delivery_report.row_from_event(
        "delivery.retrying", {"channel": "sms", "attempt": 2, "http_status": 503,
                              "error": "Twilio is down",
                              "next_attempt_at": (created + timedelta(seconds=30)).isoformat()},
        created + timedelta(seconds=5), created).as_message()
    assert row["state"] == "queued" and row["attempts"] == 2
    assert row["answer"] == "Twilio is down" and row["next_retry_at"]
    sent = delivery_report.row_from_event("delivery.sent", {"channel": "email", "attempt": 1},
                                          created + timedelta(seconds=75), created)
    assert (sent.state_words, sent.took) == ("Accepted", "1 min 15 s")


def test_durations_read_as_people_say_them():
    assert [delivery_report.duration_words(s) for s in (None, 0.42, 12.4, 185)] == \
        ["", "0.4 s", "12 s", "3 min 05 s"]


def test_cancelling_asks_first_and_the_question_holds_a_real_form(app, client, auth, people):
    public_id = send_request(app, *people)
    auth.login(people[0])
    page = client.get(f"/transactions/{public_id}").text
    confirm = re.search(r'<details class="confirm">.*?</details>', page, re.S).group(0)
    assert "Cancel this request…" in confirm
    assert "This cannot be undone." in confirm
    assert f'action="/transactions/{public_id}/cancel"' in confirm
    assert 'name="csrf_token"' in confirm and "Yes, cancel the request" in confirm


def test_the_bar_holds_the_work_the_persons_menu_their_pages_and_settings_a_sidebar(
        client, auth, make_user):
    auth.login(make_user("admin"))
    home = client.get("/").text
    work = re.search(r'<nav class="work-nav" aria-label="Main">.*?</nav>', home, re.S).group(0)
    mine = re.search(r'<details class="person-menu">.*?</details>', home, re.S).group(0)
    assert "Transactions" in work and ">Settings<" in work and "Passkeys" not in work
    for page in ("Messaging", "Passkeys", "Password", "API keys", "Sign out"):
        assert page in mine
    assert 'aria-label="Settings"' not in home
    users = client.get("/settings/users").text
    sidebar = re.search(r'<nav class="sidebar" aria-label="Settings">.*?</nav>', users,
                        re.S).group(0)
    assert '<a href="/settings/users" aria-current="page">Users</a>' in sidebar
    assert "Channels" in sidebar and "Organisation" in sidebar and "Audit log" in sidebar


def test_a_requestor_has_no_settings(client, auth, make_user):
    auth.login(make_user("requestor"))
    assert ">Settings<" not in client.get("/").text


def test_every_page_has_a_skip_link_to_the_content(client, auth, make_user):
    auth.login(make_user("member"))
    page = client.get("/").text
    assert '<a class="skip-link" href="#main">' in page and '<main id="main"' in page


def test_deactivating_a_user_asks_first(client, auth, make_user):
    auth.login(make_user("admin"))
    other = make_user("member", name="Olga Other")
    page = client.get("/settings/users").text
    confirm = re.search(r'<details class="confirm">.*?</details>', page, re.S).group(0)
    assert "Deactivate…" in confirm and "Yes, deactivate Olga Other" in confirm
    assert f'action="/settings/users/{other.id}/active"' in confirm
    assert '<input type="hidden" name="active" value="0">' in confirm


def test_removing_a_stored_key_asks_first_away_from_save(app, client, auth, make_user):
    configure_pagerduty(app)
    auth.login(make_user("admin"))
    page = client.get("/settings/pagerduty").text
    configuration = re.search(r'id="config-heading".*?</section>', page, re.S).group(0)
    assert "Save" in configuration and "Remove" not in configuration
    confirm = re.search(r'<details class="confirm">.*?</details>', page, re.S).group(0)
    assert "Yes, remove the integration key" in confirm
    assert 'action="/settings/pagerduty/remove-key"' in confirm
    assert page.count('class="card danger-zone"') == 1
    assert re.search(r"<title>([^<]*)</title>", page).group(1) == "PagerDuty · SendAuth"


def test_removing_a_passkey_asks_first(client, auth, make_user):
    auth.login(make_user("member"))
    page = client.get("/profile/passkeys").text
    confirm = re.search(r'<details class="confirm">.*?</details>', page, re.S).group(0)
    assert "Remove…" in confirm and "/remove" in confirm


def test_while_pending_the_code_is_large_and_once_final_a_banner_says_what_by_whom_and_how(
        app, client, auth, people):
    from sendauth_dashboard.models import Event
    from sendauth_dashboard.services.live import messages
    from tests.support.helpers import answer_token, verify_form

    requestor, uma = people
    public_id = send_request(app, requestor, uma)
    token = answer_token(app, public_id)
    auth.login(requestor)
    page = client.get(f"/transactions/{public_id}").text
    assert '<p class="code-big"><strong class="code" data-binding-code>' in page
    assert "data-outcome data-final-only hidden" in page
    auth.logout()
    form = verify_form(app, client, token, uma)  # signed out: the passkey alone
    assert client.post(f"/authenticate/{token}", data=form).status_code == 200
    auth.login(requestor)
    page = client.get(f"/transactions/{public_id}").text
    banner = re.search(r'<div class="outcome-banner".*?</div>\s*</div>', page, re.S).group(0)
    assert '<p class="outcome-title">Verified</p>' in banner
    assert "Uma User confirmed it is them" in banner and "with their passkey" in banner
    assert re.search(r'class="code-panel" data-pending-only hidden', page)
    assert re.search(r'<dt data-pending-only hidden>Expires</dt>', page)
    with app.app_context():
        event = db.session.scalar(db.select(Event).where(Event.kind == "transaction.verified"))
        live = messages.fragments(event, event.transaction, "verified", keep=False)
    assert '<p class="outcome-title">Verified</p>' in live["outcome"]
