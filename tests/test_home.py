"""The home page: what to do next, by role, and a count of what is wrong that tells the truth
(issue 31: who is expected to answer, retrying apart from failing, the first run's checklist)."""
import re

import pytest
import segno

from sendauth_dashboard.channels import integration
from sendauth_dashboard.extensions import db
from sendauth_dashboard.models import RoutingRule, User
from sendauth_dashboard.services.approvals import groups
from sendauth_dashboard.services.reports import health
from tests.support.helpers import configure_pagerduty, send_request


def checklist(html):
    start = html.index('class="checklist"')
    return html[start:html.index("</ol>", start)]


def test_a_new_admin_sees_the_checklist_first_with_its_progress(client, auth, make_user):
    auth.login(make_user("admin", passkey=False))
    page = client.get("/").text
    steps = checklist(page)
    assert steps.count("(to do)") == 5 and steps.count("(done)") == 1  # nothing is in error
    assert "Register your own passkey" in steps and "register a passkey" in steps
    assert all(step in steps for step in ("Set up PagerDuty", "Send a test incident",
                                          "Add the people"))
    assert "<strong data-progress>1 of 6</strong> done" in page
    assert '<progress max="6" value="1"' in page
    # Unfinished: above the card of zeros.
    assert page.index("data-checklist") < page.index('id="right-now-heading"')


def test_steps_are_ticked_off_once_done_and_then_follow_right_now(app, client, as_admin,
                                                                  make_user):
    make_user("requestor")
    configure_pagerduty(app)
    with app.app_context():
        integration.record_outcome("pagerduty", success=False, error="Invalid routing key")
        db.session.commit()
    page = client.get("/").text
    assert checklist(page).count("(done)") == 4  # the admin's passkey, key, test, people
    assert "4 of 6</strong> done" in page
    make_user("member", notify_pagerduty=True)
    with app.app_context():
        integration.record_outcome("pagerduty", success=True)
        db.session.commit()
    page = client.get("/").text
    assert "6 of 6</strong> done. SendAuth is ready." in page
    assert page.index("data-checklist") > page.index('id="right-now-heading"')


def right_now(html):
    start = html.index('class="right-now"')
    return html[start:html.index("</ul>", start)]


@pytest.mark.both_databases
def test_only_people_expected_to_answer_are_counted_as_unreachable(app, client, auth,
                                                                   make_user):
    configure_pagerduty(app)
    # Nobody here has a channel that works (email is not set up): only some answer requests.
    requestor = make_user("requestor", name="Hana Helpdesk")
    make_user("reviewer", name="Rex Reviewer")
    make_user("admin", name="Ada Other")
    make_user("member", name="Nora Nowhere")
    sent_to = make_user("requestor", name="Otto Answering")
    ruled = make_user("registrar", name="Rita Ruled")
    grouped = make_user("reviewer", name="Gail Grouped")
    with app.app_context():
        db.session.add(RoutingRule(position=1, tag_key="team", tag_value="vip",
                                   user_id=ruled.id))
        groups.create(name="Security", member_emails=[grouped.email], threshold=1, actor=None)
        db.session.commit()
    reached = make_user("member", name="Uma Reached", notify_pagerduty=True)
    send_request(app, requestor, reached)
    with app.app_context():
        db.session.get(User, sent_to.id).notify_pagerduty = True
        db.session.commit()
    send_request(app, requestor, sent_to)
    with app.app_context():
        db.session.get(User, sent_to.id).notify_pagerduty = False
        db.session.commit()
    auth.login(make_user("reviewer"))
    figure = right_now(client.get("/").text).split('data-figure="unreachable"')[1]
    assert "<strong>4</strong> people who answer requests cannot be sent one" in figure
    for name in ("Nora Nowhere", "Otto Answering", "Rita Ruled", "Gail Grouped"):
        assert name in figure
    for name in ("Hana Helpdesk", "Rex Reviewer", "Ada Other", "Uma Reached"):
        assert name not in figure


def test_a_channel_being_retried_is_amber_apart_from_failing(app, client, as_admin):
    configure_pagerduty(app)
    with app.app_context():
        integration.record_outcome("pagerduty", success=False, retrying=True,
                                   error="HTTP 429: Too Many Requests")
        db.session.commit()
        assert health.channels_retrying() == ["pagerduty"] and not health.channels_in_error()
    page = client.get("/").text
    now = right_now(page)
    assert 'data-figure="channels-retrying" class="warn"' in now
    assert "<strong>1</strong> channel retrying, not failing" in now
    assert "HTTP 429: Too Many Requests" in now and "channel failing" not in now
    assert 'class="nav-alert nav-warn" title="PagerDuty: the last send is being retried"' in page
    step = [s for s in checklist(page).split("<li")[1:] if "none may be in error" in s][0]
    assert 'class="done"' in step and "retrying: PagerDuty" in step
    with app.app_context():
        integration.record_outcome("pagerduty", success=False, error="Gave up after 12 attempts")
        db.session.commit()
    page = client.get("/").text
    assert "<strong>1</strong> channel failing" in right_now(page)
    assert "channels-retrying" not in page
    assert 'class="nav-alert" title="PagerDuty: the last send failed"' in page


def test_a_member_no_channel_reaches_is_told_so_on_home(app, client, auth, make_user):
    member = make_user("member", notify_email=False)
    auth.login(member)
    page = client.get("/").text
    assert "Nobody can send you an authentication request yet" in page
    assert "has not set up a way to reach anyone yet" in page  # no channel is set up
    configure_pagerduty(app)
    page = client.get("/").text
    assert "can reach you through PagerDuty" in page and 'href="/profile/messaging"' in page
    with app.app_context():
        db.session.get(User, member.id).notify_pagerduty = True
        db.session.commit()
    assert "data-own-reach" not in client.get("/").text
    auth.logout()
    auth.login(make_user("requestor", notify_email=False))  # not expected to answer
    assert "data-own-reach" not in client.get("/").text


def test_a_page_opened_at_another_local_host_says_where_passkeys_work(app, client):
    app.config["BASE_URL"] = "http://localhost:5000"
    page = client.get("/login?next=%2F", base_url="http://127.0.0.1:5000").text
    assert "data-wrong-address" in page
    assert "opened SendAuth at 127.0.0.1:5000, but passkeys work only at localhost:5000" in page
    assert 'href="http://localhost:5000/login?next=%2F"' in page
    assert "data-wrong-address" not in client.get("/login", base_url="http://localhost:5000").text
    assert "data-wrong-address" in client.get("/login", base_url="http://localhost:5055").text
    app.config["BASE_URL"] = "https://sendauth.example.com"
    assert "data-wrong-address" in client.get("/login", base_url="http://10.0.0.5").text
    # Another name (a proxy's Host, an alias) is not taken for a mistake.
    assert "data-wrong-address" not in client.get("/login", base_url="http://internal").text


def test_the_invitation_link_has_a_copy_button_a_qr_code_and_invite_another(client, as_admin):
    page = as_admin.client.post("/settings/users", data={
        "email": "new.person@example.com", "name": "New Person", "role": "member",
        "csrf_token": as_admin.csrf_token("/settings/users")}).text
    link = re.search(r"data-enrolment-link>([^<]+)<", page).group(1)
    assert 'data-copy="enrolment-link"' in page and 'id="enrolment-link"' in page
    assert '<svg role="img" aria-label="The invitation link as a QR code"' in page
    drawn = re.search(r'class="qrline"[^>]* d="([^"]+)"', page).group(1)
    assert drawn in segno.make(link, error="m").svg_inline(scale=5)  # the code is the link
    assert 'href="/settings/users#invite" data-invite-another' in page
    assert 'id="invite"' in client.get("/settings/users").text


def test_a_requestor_is_told_to_send_a_request_and_sees_no_admin_steps(client, auth, make_user):
    auth.login(make_user("requestor"))
    page = client.get("/").text
    assert "Your recent requests" in page
    assert 'class="checklist"' not in page


def test_a_member_sees_neither_admin_steps_nor_requests(client, auth, make_user):
    auth.login(make_user("member"))
    page = client.get("/").text
    assert 'class="checklist"' not in page
    assert "Your recent requests" not in page


def test_navigation_shows_only_what_the_role_may_open(client, auth, make_user, admin):
    auth.login(make_user("reviewer"))
    assert ">Settings<" not in client.get("/").text
    assert 'href="/insights"' in client.get("/").text
    auth.logout()
    auth.login(admin)
    assert ">Settings<" in client.get("/").text
    assert 'href="/settings/users"' in client.get("/settings/organisation").text


def test_the_menu_marks_the_section_of_the_page_open(client, as_admin):
    page = client.get("/settings/sms").text
    assert '<a href="/settings/channels" aria-current="page">Channels</a>' in page
    assert 'aria-current="page">Users' not in page


def test_a_channels_pages_say_retrying_not_error(app, client, as_admin):
    configure_pagerduty(app)
    with app.app_context():
        integration.record_outcome("pagerduty", success=False, retrying=True,
                                   error="HTTP 429: Too Many Requests")
        db.session.commit()
    page = client.get("/settings/pagerduty").text
    assert '<span class="badge status-retrying">Retrying</span>' in page
    assert "the send is being tried again" in page and "HTTP 429: Too Many Requests" in page
    assert '<span class="badge status-retrying">retrying</span>' in page  # its tab
    overview = client.get("/settings/channels").text
    assert '<span class="badge status-retrying">on, retrying</span>' in overview
    assert "in error" not in overview
