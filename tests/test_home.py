from sendauth_dashboard.channels import integration
from sendauth_dashboard.extensions import db
from tests.support.helpers import configure_pagerduty


def checklist(html):
    start = html.index('class="checklist"')
    return html[start:html.index("</ol>", start)]


def test_a_new_admin_sees_four_steps_to_do(client, as_admin):
    steps = checklist(client.get("/").text)
    assert steps.count("(to do)") == 4
    assert "register a passkey" in steps  # nobody can be reached yet, so nobody has one
    assert all(step in steps for step in ("Set up PagerDuty", "Send a test incident",
                                          "Add the people"))


def test_steps_are_ticked_off_once_done(app, client, as_admin, make_user):
    make_user("requestor")
    configure_pagerduty(app)
    with app.app_context():
        integration.record_outcome("pagerduty", success=False, error="Invalid routing key")
        db.session.commit()
    steps = checklist(client.get("/").text)
    assert steps.count("(done)") == 3


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
