"""Enrolment links and invitations: the only way to a first passkey (and to one's own first
password). Single use, expiring, stored as a hash; a refusal says what to do and changes
nothing."""
import hashlib
import re
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from sendauth_dashboard.extensions import db
from sendauth_dashboard.models import EnrolmentLink, Event, Passkey, Transaction, User, utcnow
from tests.support.helpers import (
    configure_email,
    configure_pagerduty,
    database_rows,
    enrol,
    passkey_ids,
    send_request,
)
from tests.support.web import csrf_token_from

LINK = re.compile(r"data-enrolment-link>([^<]+)<")


def invite(as_admin, email="nora@example.com", **extra):
    response = as_admin.post("/settings/users", {"email": email, "name": "Nora New",
                                                 "role": "member", **extra})
    assert response.status_code == 200, response.text[:500]
    return response


def issue_link(as_admin, user, **extra):
    response = as_admin.post(f"/settings/users/{user.id}/enrolment-link", extra,
                             token_page="/settings/users")
    assert response.status_code == 200, response.text[:500]
    return response


def link_in(response):
    return LINK.search(response.text).group(1)


def user_by_email(app, email):
    with app.app_context():
        return db.session.scalar(select(User).where(User.email == email))


def events(app, kind):
    with app.app_context():
        return [e.data for e in db.session.scalars(
            select(Event).where(Event.kind == kind).order_by(Event.id))]


def test_an_invitation_sets_the_password_and_the_first_passkey(app, client, as_admin, auth):
    link = link_in(invite(as_admin))
    token = link.rsplit("/", 1)[1]
    with app.app_context():
        stored = db.session.scalar(select(EnrolmentLink))
        assert stored.token_hash == hashlib.sha256(token.encode()).hexdigest()
        assert stored.kind == "invitation" and stored.used_at is None
        assert stored.expires_at - stored.created_at == timedelta(days=1)
    assert all(token not in row for table in database_rows(app).values() for r in table
               for row in r)
    auth.logout()
    response, _ = enrol(client, link, password="plum kettle orbit sand")
    assert response.status_code == 302 and response.headers["Location"] == "/"
    assert "Welcome, Nora New" in client.get("/").text
    nora = user_by_email(app, "nora@example.com")
    assert passkey_ids(app, nora) != []
    assert events(app, "user.enrolled")[-1]["kind"] == "invitation"
    auth.logout()
    assert auth.login("nora@example.com", "plum kettle orbit sand").status_code == 302


def test_a_link_works_once(app, client, as_admin, auth):
    link = link_in(invite(as_admin))
    auth.logout()
    enrol(client, link, password="plum kettle orbit sand")
    auth.logout()
    response = client.get("/enrol/" + link.rsplit("/", 1)[1])
    assert response.status_code == 410
    assert "This enrolment link was already used" in response.text


@pytest.mark.parametrize("password, message", [
    ("password1234", "too easy to guess"),
    ("qwertyuiop123", "too easy to guess"),
    ("short", "at least 12 characters"),
])
def test_a_weak_password_on_an_invitation_is_refused_and_nothing_is_used(
        app, client, as_admin, auth, password, message):
    link = link_in(invite(as_admin))
    auth.logout()
    before = database_rows(app)
    response, _ = enrol(client, link, password=password)
    assert response.status_code == 400
    assert message in response.text
    after = database_rows(app)
    # The page's script asked for a registration challenge: nothing else changed.
    assert {k: v for k, v in after.items() if k != "passkey_challenges"} == \
        {k: v for k, v in before.items() if k != "passkey_challenges"}


def test_an_expired_link_is_refused_and_changes_nothing(app, client, as_admin, auth):
    link = link_in(invite(as_admin))
    with app.app_context():
        db.session.execute(update(EnrolmentLink).values(expires_at=utcnow()))
        db.session.commit()
    auth.logout()
    before = database_rows(app)
    path = "/enrol/" + link.rsplit("/", 1)[1]
    response = client.get(path)
    assert response.status_code == 410
    assert "This enrolment link expired: each works for" in response.text
    assert "Ask an admin for a new one" in response.text
    assert client.post(path, data={}).status_code in (400, 410)
    assert database_rows(app) == before


def test_a_made_up_link_is_refused(client):
    response = client.get("/enrol/" + "x" * 43)
    assert response.status_code == 410
    assert "This enrolment link is not valid" in response.text


def test_a_passkey_link_is_opened_signed_in_as_its_user(app, client, as_admin, auth,
                                                        make_user):
    nopass = make_user("member", email="noel@example.com", passkey=False)
    link = link_in(issue_link(as_admin, nopass))
    path = "/enrol/" + link.rsplit("/", 1)[1]
    response = client.get(path)
    assert response.status_code == 403
    assert "This link is for" in response.text and "Sign out" in response.text
    auth.logout()
    response = client.get(path)
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    auth.login(nopass)
    response, _ = enrol(client, link)
    assert response.status_code == 302
    assert len(passkey_ids(app, nopass)) == 1
    assert "Your passkey &#39;Work laptop&#39; is registered" in client.get(
        "/profile/passkeys").text


def test_a_reset_replaces_the_old_passkeys_once_the_new_one_is_registered(
        app, client, as_admin, auth, make_user):
    configure_pagerduty(app)
    uma = make_user("member", email="uma@example.com", notify_pagerduty=True)
    old = passkey_ids(app, uma)
    with app.app_context():
        db.session.execute(update(Passkey).values(created_at=utcnow() - timedelta(days=3)))
        db.session.commit()
    page = client.get("/settings/users").text
    assert "Reset passkeys" in page
    link = link_in(issue_link(as_admin, uma))
    assert events(app, "user.enrolment_link_issued")[-1]["reset"] is True
    assert passkey_ids(app, uma) == old, "issuing removes nothing"
    public_id = send_request(app, make_user("requestor"), uma)
    with app.app_context():
        t = db.session.scalar(select(Transaction).where(Transaction.public_id == public_id))
        assert t.risks == ["passkey_reset"]
    auth.logout()
    auth.login(uma)
    response, _ = enrol(client, link)
    assert response.status_code == 302
    new = passkey_ids(app, uma)
    assert len(new) == 1 and new != old
    assert [e["name"] for e in events(app, "passkey.removed")] == ["Test passkey"]


def test_a_newer_link_replaces_an_unused_older_one(app, client, as_admin, make_user):
    nopass = make_user("member", passkey=False)
    first = link_in(issue_link(as_admin, nopass))
    issue_link(as_admin, nopass)
    assert client.get("/enrol/" + first.rsplit("/", 1)[1]).status_code == 410


def test_the_enrolment_ttl_is_a_setting(app, as_admin, make_user):
    app.config["ENROLMENT_TTL_SECONDS"] = 600
    issue_link(as_admin, make_user("member", passkey=False))
    with app.app_context():
        stored = db.session.scalar(select(EnrolmentLink))
        assert stored.expires_at - stored.created_at == timedelta(seconds=600)


def test_an_emailed_link_arrives_and_is_not_shown(app, client, as_admin, fake_smtp):
    configure_email(app, fake_smtp.port)
    response = invite(as_admin, send_email="y")
    assert "data-link-emailed" in response.text and not LINK.search(response.text)
    fake_smtp.wait_for(lambda fake: len(fake.received) == 1)
    (mail,) = fake_smtp.received
    assert mail.rcpt_tos == ["nora@example.com"]
    link = re.search(r"http://sendauth.test/enrol/\S+", mail.body()).group(0)
    assert client.get("/enrol/" + link.rsplit("/", 1)[1]).status_code in (200, 403)


def test_a_failed_email_says_so_and_still_shows_the_link(app, as_admin, fake_smtp):
    configure_email(app, fake_smtp.port)
    fake_smtp.refuse_next_recipient("550 5.1.1 <nora@example.com>: User unknown")
    response = invite(as_admin, send_email="y")
    assert "could not be emailed to nora@example.com: SMTP 550" in response.text
    assert LINK.search(response.text)
    assert "/enrol/" not in response.text.split("data-email-failed")[1].split("</p>")[0]


def test_without_email_set_up_emailing_says_why_and_shows_the_link(app, as_admin):
    response = invite(as_admin, send_email="y")
    assert "could not be emailed" in response.text and LINK.search(response.text)


def test_the_cli_prints_a_link_that_works(app, runner, client, auth, make_user):
    nopass = make_user("member", email="cli@example.com", passkey=False)
    result = runner.invoke(args=["enrolment-link", "--email", "CLI@example.com"])
    assert result.exit_code == 0, result.output
    link = re.search(r"http://sendauth.test/enrol/\S+", result.output).group(0)
    auth.login(nopass)
    response, _ = enrol(client, link)
    assert response.status_code == 302 and len(passkey_ids(app, nopass)) == 1
    unknown = runner.invoke(args=["enrolment-link", "--email", "nobody@example.com"])
    assert unknown.exit_code == 1 and "There is no user" in unknown.output


def test_ensure_admin_prints_a_link_for_the_first_admins_passkey(app, runner, client, auth):
    result = runner.invoke(args=["ensure-admin"])
    assert result.exit_code == 0, result.output
    password = next(line.split()[-1] for line in result.output.splitlines()
                    if line.strip().startswith("password"))
    link = re.search(r"http://sendauth.test/enrol/\S+", result.output).group(0)
    auth.login("admin@example.com", password)
    response, _ = enrol(client, link)
    assert response.status_code == 302
    admin = user_by_email(app, "admin@example.com")
    assert len(passkey_ids(app, admin)) == 1


def test_the_invite_form_asks_for_no_password(client, as_admin):
    page = client.get("/settings/users").text
    assert 'name="password"' not in page
    assert "Invite a user" in page
    csrf_token_from(page)


def test_a_deactivated_user_gets_no_link(app, as_admin, make_user):
    gone = make_user("member", active=False)
    response = as_admin.post(f"/settings/users/{gone.id}/enrolment-link", {},
                             token_page="/settings/users")
    assert response.status_code == 302
    with app.app_context():
        assert db.session.scalar(select(EnrolmentLink)) is None


def test_invited_and_enrolled_today_no_warning_on_the_first_request_but_a_reset_warns(
        app, client, as_admin, auth, make_user):
    configure_pagerduty(app)
    hana = make_user("requestor", name="Hana Helpdesk")
    link = link_in(invite(as_admin))
    auth.logout()
    assert enrol(client, link, password="plum kettle orbit sand")[0].status_code == 302
    auth.logout()
    with app.app_context():
        db.session.execute(update(User).where(User.email == "nora@example.com")
                           .values(notify_pagerduty=True, contacts_changed_at=utcnow()))
        db.session.commit()
    nora = user_by_email(app, "nora@example.com")

    def risks_of_a_new_request():
        public_id = send_request(app, hana, nora)
        with app.app_context():
            return db.session.scalar(select(Transaction.risks)
                                     .where(Transaction.public_id == public_id))

    assert risks_of_a_new_request() == ["first_passkey", "first_contacts"]  # notes only
    auth.login("admin@example.com")
    reset = link_in(issue_link(as_admin, nora))
    auth.logout()
    auth.login("nora@example.com", "plum kettle orbit sand")
    assert enrol(client, reset)[0].status_code == 302
    assert risks_of_a_new_request()[:2] == ["passkey_reset", "new_passkey"]
