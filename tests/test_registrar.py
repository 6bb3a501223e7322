"""Registrars manage people (invitations, deactivation, enrolment links, the users page), in the
pages and through the API, but never an admin's account and never the admin role."""
import re

from sqlalchemy import select

from sendauth_dashboard.extensions import db
from sendauth_dashboard.models import EnrolmentLink, User
from tests.support.api import Api, make_key
from tests.support.helpers import database_rows


def role_of(app, user_id):
    with app.app_context():
        user = db.session.get(User, user_id)
        return user.role, user.active


def test_a_registrar_invites_deactivates_and_issues_an_enrolment_link(app, client, auth,
                                                                       make_user):
    registrar = make_user("registrar", email="rita@example.com", name="Rita Registrar")
    member = make_user("member", email="mo@example.com", name="Mo Member")
    auth.login(registrar)
    invited = auth.post("/settings/users", {"email": "new@example.com", "name": "New Person",
                                            "role": "requestor"}, token_page="/settings/users")
    assert invited.status_code == 200 and re.search(r"data-enrolment-link>[^<]+<", invited.text)
    link = auth.post(f"/settings/users/{member.id}/enrolment-link", {},
                     token_page="/settings/users")
    assert link.status_code == 200 and "data-enrolment-link" in link.text
    gone = auth.post(f"/settings/users/{member.id}/active", {"active": "0"},
                     token_page="/settings/users")
    assert gone.status_code == 302 and role_of(app, member.id) == ("member", False)


def test_a_registrar_cannot_make_an_admin_nor_touch_one(app, client, auth, make_user, admin):
    registrar = make_user("registrar", email="rita@example.com", name="Rita Registrar")
    member = make_user("member", email="mo@example.com", name="Mo Member")
    auth.login(registrar)
    page = client.get("/settings/users")
    assert 'value="admin"' not in page.text, "the admin role is not offered"
    assert f"/settings/users/{admin.id}/active" not in page.text
    before = database_rows(app)
    invited = auth.post("/settings/users", {"email": "boss@example.com", "name": "Boss",
                                            "role": "admin"}, token_page="/settings/users")
    assert invited.status_code == 400
    promoted = auth.post(f"/settings/users/{member.id}/role", {"role": "admin"},
                         token_page="/settings/users", follow_redirects=True)
    assert "Only an admin can give the role admin" in promoted.text
    for url, form in ((f"/settings/users/{admin.id}/active", {"active": "0"}),
                      (f"/settings/users/{admin.id}/role", {"role": "member"})):
        refused = auth.post(url, form, token_page="/settings/users", follow_redirects=True)
        assert "only an admin can change their account" in refused.text
    link = auth.post(f"/settings/users/{admin.id}/enrolment-link", {},
                     token_page="/settings/users", follow_redirects=True)
    assert "only an admin can issue them an enrolment link" in link.text
    assert database_rows(app) == before
    assert role_of(app, member.id) == ("member", True) and role_of(app, admin.id)[0] == "admin"


def test_a_registrar_key_manages_people_but_not_admins(app, client, make_user, admin):
    registrar = make_user("registrar", email="rita@example.com", name="Rita Registrar")
    member = make_user("member", email="mo@example.com", name="Mo Member")
    api = Api(client, make_key(app, registrar, scopes=["users:read", "users:write"]))
    assert api.get("/api/v1/users").status_code == 200
    assert api.post("/api/v1/users", json={"email": "new@example.com", "name": "New",
                                           "role": "reviewer"}).status_code == 201
    assert api.patch(f"/api/v1/users/{member.id}", json={"active": False}).status_code == 200
    for answer in (api.post("/api/v1/users", json={"email": "boss@example.com", "name": "Boss",
                                                    "role": "admin"}),
                   api.patch(f"/api/v1/users/{admin.id}", json={"active": False}),
                   api.patch(f"/api/v1/users/{member.id}", json={"role": "admin"})):
        assert answer.status_code == 403 and answer.mimetype == "application/problem+json"
        assert "only an admin" in answer.json["detail"].lower()
    assert api.post(f"/api/v1/users/{admin.id}/enrolment-link", json={}).status_code == 409
    with app.app_context():
        assert db.session.scalars(select(EnrolmentLink).where(
            EnrolmentLink.user_id == admin.id)).all() == []
    assert role_of(app, admin.id) == ("admin", True)
