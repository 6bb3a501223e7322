"""Admins manage users and roles; the last active admin always stays."""
import re
import threading

import pytest
from sqlalchemy import func, select

from sendauth_dashboard.extensions import db
from sendauth_dashboard.models import Event, Transaction, User
from tests.support.accounts import PASSWORD
from tests.support.helpers import enrol


def count_users(app):
    with app.app_context():
        return db.session.scalar(select(func.count(User.id)))


def events_of(app, kind):
    with app.app_context():
        return [e.data for e in db.session.scalars(select(Event).where(Event.kind == kind))]


def new_user_form(**overrides):
    form = {"email": "new.person@example.com", "name": "New Person", "role": "requestor"}
    form.update(overrides)
    return form


@pytest.mark.both_databases
def test_admin_sees_every_user(client, as_admin, make_user):
    make_user("member", name="Mona Member")
    page = client.get("/settings/users")
    assert page.status_code == 200
    assert "Mona Member" in page.text and "Ada Admin" in page.text


def test_admin_invites_a_user_who_sets_their_password_through_the_link(app, client, as_admin,
                                                                        auth):
    response = as_admin.post("/settings/users", new_user_form(email="New.Person@Example.com"))
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    link = re.search(r"data-enrolment-link>([^<]+)<", response.text).group(1)
    assert events_of(app, "user.created")[-1] == {"email": "new.person@example.com",
                                                  "role": "requestor", "invited": True}
    auth.logout()
    assert "Email or password is incorrect" in auth.login("new.person@example.com").text
    response, _ = enrol(client, link, password=PASSWORD)
    assert response.status_code == 302
    auth.logout()
    assert auth.login("new.person@example.com").status_code == 302


@pytest.mark.parametrize("overrides, message", [
    ({"email": "admin@EXAMPLE.com"}, "There is already an account for admin@example.com."),
    ({"email": "not-an-email"}, "That email address is not valid"),
    ({"email": ""}, "Enter an email address."),
    ({"name": "   "}, "Enter a name"),
    ({"name": "x" * 101}, "at most 100 characters"),
    ({"name": "Eve\r\nBcc: all@example.com"}, "The name contains a line break (U+000D)"),
    ({"name": "Eve\u2028Evil"}, "The name contains a line break (U+2028)"),
    ({"name": "Eve\x1b[2J"}, "The name contains a control character (U+001B)"),
    ({"role": "superuser"}, "Not a valid choice"),
])
def test_bad_new_user_input_gets_a_message_and_writes_nothing(app, as_admin, overrides, message):
    before = count_users(app)
    response = as_admin.post("/settings/users", new_user_form(**overrides))
    assert response.status_code == 400
    assert message in response.text
    assert count_users(app) == before
    assert events_of(app, "user.created") == [{"email": "admin@example.com", "role": "admin"}]


def test_admin_changes_a_role(app, as_admin, make_user):
    user = make_user("member")
    response = as_admin.post(f"/settings/users/{user.id}/role", {"role": "reviewer"})
    assert response.status_code == 302
    with app.app_context():
        assert db.session.get(User, user.id).role == "reviewer"
    assert events_of(app, "user.role_changed") == [
        {"email": user.email, "from": "member", "to": "reviewer"}]


def test_a_role_change_without_a_role_is_refused_not_a_demotion(app, client, as_admin,
                                                                  make_user):
    user = make_user("reviewer")
    as_admin.post(f"/settings/users/{user.id}/role", {})
    assert "Choose one of the listed roles." in client.get("/settings/users").text
    with app.app_context():
        assert db.session.get(User, user.id).role == "reviewer"


def test_a_made_up_role_is_refused(app, client, as_admin, make_user):
    user = make_user("member")
    as_admin.post(f"/settings/users/{user.id}/role", {"role": "root"})
    assert "Choose one of the listed roles." in client.get("/settings/users").text
    with app.app_context():
        assert db.session.get(User, user.id).role == "member"


@pytest.mark.both_databases
def test_the_last_active_admin_cannot_be_demoted(app, client, as_admin, admin):
    as_admin.post(f"/settings/users/{admin.id}/role", {"role": "member"})
    assert "is the last active admin" in client.get("/settings/users").text
    with app.app_context():
        assert db.session.get(User, admin.id).role == "admin"
    assert events_of(app, "user.role_changed") == []


@pytest.mark.both_databases
def test_an_admin_can_step_down_when_another_admin_remains(app, as_admin, admin, make_user):
    make_user("admin")
    as_admin.post(f"/settings/users/{admin.id}/role", {"role": "reviewer"})
    with app.app_context():
        assert db.session.get(User, admin.id).role == "reviewer"


@pytest.mark.both_databases
@pytest.mark.parametrize("change", ["demote", "deactivate"])
def test_two_admins_removing_each_other_at_once_leave_one_admin(app, make_user, monkeypatch,
                                                                change):
    from sendauth_dashboard.services.people import accounts

    first, second = make_user("admin"), make_user("admin")
    counted = accounts._other_active_admins
    # Each waits (up to 2 s) for the other to have counted too: without a lock both count one
    # other admin and both go ahead. With it, the second waits for the first to commit.
    both_counted = threading.Barrier(2, timeout=2)

    def count_then_wait(user):
        n = counted(user)
        try:
            both_counted.wait()
        except threading.BrokenBarrierError:
            pass
        return n

    monkeypatch.setattr(accounts, "_other_active_admins", count_then_wait)
    outcomes = []

    def remove(user_id):
        with app.app_context():
            user = db.session.get(User, user_id)
            try:
                if change == "demote":
                    accounts.change_role(user, "member", actor=None)
                else:
                    accounts.set_active(user, False, actor=None)
                db.session.commit()
                outcomes.append("done")
            except accounts.AccountError as exc:
                db.session.rollback()
                outcomes.append(str(exc))

    threads = [threading.Thread(target=remove, args=(u.id,)) for u in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(outcomes) == 2 and outcomes.count("done") == 1, outcomes
    assert any("is the last active admin" in outcome for outcome in outcomes)
    with app.app_context():
        assert accounts.has_active_admin()


@pytest.mark.both_databases
def test_the_last_active_admin_cannot_be_deactivated(app, client, as_admin, make_user):
    other_admin = make_user("admin")
    as_admin.post(f"/settings/users/{other_admin.id}/active", {"active": "0"})
    with app.app_context():
        assert db.session.get(User, other_admin.id).active is False
    # Now the signed-in admin is the last active one; a deactivated admin does not count.
    with app.app_context():
        from sendauth_dashboard.services.people import accounts
        me = db.session.scalar(select(User).where(User.email == "admin@example.com"))
        with pytest.raises(accounts.AccountError, match="last active admin"):
            accounts.set_active(me, False, actor=None)


def test_an_admin_cannot_deactivate_themselves(app, client, as_admin, admin, make_user):
    make_user("admin")
    as_admin.post(f"/settings/users/{admin.id}/active", {"active": "0"})
    assert "cannot deactivate your own account" in client.get("/settings/users").text


def test_deactivating_signs_the_user_out_and_reactivating_lets_them_back(
        app, as_admin, make_user):
    user = make_user("requestor")
    other = app.test_client()
    from tests.support.web import AuthActions
    AuthActions(other).login(user)
    assert other.get("/").status_code == 200

    as_admin.post(f"/settings/users/{user.id}/active", {"active": "0"})
    assert other.get("/").status_code == 302
    assert "deactivated" in AuthActions(other).login(user).text

    as_admin.post(f"/settings/users/{user.id}/active", {"active": "1"})
    assert AuthActions(other).login(user).status_code == 302
    assert [e for e in events_of(app, "user.deactivated")] == [{"email": user.email}]
    assert [e for e in events_of(app, "user.reactivated")] == [{"email": user.email}]


def test_deactivating_cancels_the_requests_waiting_for_their_answer(app, as_admin, make_user):
    from tests.support.helpers import configure_pagerduty, send_request

    configure_pagerduty(app)
    requestor = make_user("requestor")
    leaver = make_user("member", notify_pagerduty=True)
    waiting = send_request(app, requestor, leaver)
    as_admin.post(f"/settings/users/{leaver.id}/active", {"active": "0"})
    with app.app_context():
        status = db.session.scalar(select(Transaction.status)
                                   .where(Transaction.public_id == waiting))
    assert status == "cancelled"
    assert events_of(app, "transaction.cancelled") == [{"status": "cancelled",
                                                        "reason": "the user was deactivated"}]


@pytest.mark.parametrize("value", ["", "yes", "2"])
def test_a_tampered_active_flag_is_a_400(as_admin, make_user, value):
    user = make_user("member")
    assert as_admin.post(f"/settings/users/{user.id}/active", {"active": value}).status_code == 400


def test_changing_an_unknown_user_is_a_404(as_admin):
    assert as_admin.post("/settings/users/9999/role", {"role": "member"}).status_code == 404
