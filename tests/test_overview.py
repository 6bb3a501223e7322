"""What reviewers and admins see at a glance: pending, failing, channels in error, who cannot
be reached, and a checklist that tells the truth."""
from datetime import timedelta

import pytest

from sendauth_dashboard.channels import integration
from sendauth_dashboard.extensions import db
from sendauth_dashboard.models import Delivery, User, utcnow
from sendauth_dashboard.services.reports import health, organisation
from tests.support.accounts import register_passkey
from tests.support.helpers import configure_pagerduty, send_request

pytestmark = pytest.mark.both_databases


def checklist(html):
    start = html.index('class="checklist"')
    return html[start:html.index("</ol>", start)]


def step(html, words):
    """'done' or 'todo' for the checklist step whose label has ``words``."""
    for item in checklist(html).split("<li")[1:]:
        if words in item:
            return "done" if 'class="done"' in item else "todo"
    raise AssertionError(f"no step about {words!r}")


def break_pagerduty(app, error="Connection refused by events.pagerduty.com"):
    with app.app_context():
        integration.record_outcome("pagerduty", success=False, error=error)
        db.session.commit()


def test_reviewer_home_shows_what_is_pending_and_failing(app, client, auth, make_user):
    configure_pagerduty(app)
    requestor = make_user("requestor")
    uma = make_user("member", name="Uma User", notify_pagerduty=True)
    make_user("member", name="Nora Nowhere", notify_email=False)
    send_request(app, requestor, uma)
    break_pagerduty(app)
    with app.app_context():
        db.session.execute(db.update(Delivery).values(status="failed", last_error="refused"))
        db.session.commit()
    auth.login(make_user("reviewer"))
    for page in (client.get("/").text, client.get("/right-now").text):
        assert "<strong>1</strong> pending" in page and "Uma User" in page
        assert "min" in page and "s left" in page
        assert "<strong>1</strong> failed in the last 24 hours" in page
        assert "<strong>1</strong> channel failing" in page
        assert "Connection refused by events.pagerduty.com" in page
        assert "Nora Nowhere" in page  # no channel reaches her
    assert 'data-right-now' in client.get("/").text


def test_a_quiet_service_says_so(app, client, auth, make_user):
    auth.login(make_user("reviewer"))
    page = client.get("/right-now").text
    assert "<strong>0</strong> pending" in page
    assert "Every channel that is on worked the last time it sent." in page


def test_who_cannot_be_reached_and_why(app, make_user):
    configure_pagerduty(app)
    reached = make_user("member", notify_pagerduty=True)
    keyless = make_user("member", notify_pagerduty=True, passkey=False)
    no_channel = make_user("member", notify_email=False)
    with app.app_context():
        people = [db.session.get(User, p.id) for p in (reached, keyless, no_channel)]
        reach = health.reach_of(people)
        assert reach[reached.id].reachable and reach[reached.id].channels == ("pagerduty",)
        assert reach[reached.id].passkeys == 1
        assert reach[keyless.id].why_not.startswith("no passkey")
        assert reach[no_channel.id].why_not.startswith("no channel reaches them")
        organisation.update(require_passkey=False, actor=None)
        db.session.commit()
        assert health.reach_of(people)[keyless.id].reachable


def test_the_checklist_is_not_done_while_a_channel_is_in_error(app, client, as_admin):
    configure_pagerduty(app)
    with app.app_context():
        integration.record_outcome("pagerduty", success=True)
        db.session.commit()
    assert step(client.get("/").text, "none may be in error") == "done"
    break_pagerduty(app)
    assert step(client.get("/").text, "none may be in error") == "todo"


def test_the_checklist_wants_a_passkey_for_someone_who_can_be_reached(app, client, as_admin,
                                                                      make_user):
    configure_pagerduty(app)
    uma = make_user("member", notify_pagerduty=True, passkey=False)
    assert step(client.get("/").text, "register a passkey") == "todo"
    with app.app_context():
        register_passkey(app, db.session.get(User, uma.id))
        db.session.commit()
    assert step(client.get("/").text, "register a passkey") == "done"
    with app.app_context():
        organisation.update(require_passkey=False, actor=None)
        db.session.commit()
    assert "register a passkey" not in checklist(client.get("/").text)


def test_a_channel_in_error_is_marked_in_the_menu_and_on_the_overview(app, client, as_admin,
                                                                      make_user):
    configure_pagerduty(app)
    assert 'class="nav-alert"' not in client.get("/").text
    public_id = send_request(app, make_user("requestor"),
                             make_user("member", notify_pagerduty=True))
    break_pagerduty(app)
    with app.app_context():
        db.session.execute(db.update(Delivery).values(status="failed"))
        old = db.session.scalars(db.select(Delivery)).first()
        db.session.add(Delivery(transaction_id=old.transaction_id, channel="email",
                                status="failed", created_at=utcnow() - timedelta(hours=25)))
        db.session.commit()
    assert public_id
    home = client.get("/").text
    assert 'class="nav-alert" title="PagerDuty: the last send failed"' in home
    overview = client.get("/settings/channels").text
    row = overview.split('data-channel="pagerduty"', 1)[1].split("</tr>", 1)[0]
    assert "on, in error" in row and "Connection refused by events.pagerduty.com" in row
    assert "<td>1</td>" in row
    email = overview.split('data-channel="email"', 1)[1].split("</tr>", 1)[0]
    assert "<td>0</td>" in email  # its failure is older than 24 hours
    assert '<span class="badge status-error">error</span>' in client.get("/settings/sms").text


def test_the_users_page_answers_who_can_be_reached(app, client, as_admin, make_user):
    configure_pagerduty(app)
    make_user("member", name="Rae Reached", notify_pagerduty=True)
    make_user("member", name="Kit Keyless", notify_pagerduty=True, passkey=False)
    make_user("member", name="Nell Nowhere", notify_email=False)
    page = client.get("/settings/users").text
    rae = page.split("Rae Reached", 1)[1].split("</tr>", 1)[0]
    assert '<td data-field="passkeys">1 <span class="muted">newest' in rae
    assert "PagerDuty" in rae and "cannot be sent a request" not in rae
    assert "no passkey, and the organisation requires one" in page
    assert "<td data-field=\"last-sign-in\"><span class=\"muted\">never</span></td>" in rae
    unreachable = client.get("/settings/users?reach=unreachable").text
    assert "Kit Keyless" in unreachable and "Nell Nowhere" in unreachable
    assert "Rae Reached" not in unreachable
    found = client.get("/settings/users?q=KEYLESS").text
    assert "Kit Keyless" in found and "Nell Nowhere" not in found
    assert client.get("/settings/users?q=%25&reach=nonsense").status_code == 200


def test_signing_in_is_remembered(app, client, auth, make_user):
    person = make_user("member")
    auth.login(person)
    with app.app_context():
        signed_in = db.session.get(User, person.id).last_sign_in_at
    assert signed_in is not None and utcnow() - signed_in < timedelta(minutes=5)
