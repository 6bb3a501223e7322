"""SCIM on Settings → Sign-in: the token shown once and rotated, a group's role, and the
provisioned people still waiting for an enrolment link."""
from sqlalchemy import select

from sendauth_dashboard.extensions import db
from sendauth_dashboard.models import Event, ScimToken, User
from sendauth_dashboard.services.provisioning import tokens
from tests.support.api import Api
from tests.support.web import csrf_token_from

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"


def issue(client):
    page = client.get("/settings/sign-in")
    return client.post("/settings/sign-in/scim-token",
                       data={"csrf_token": csrf_token_from(page.get_data(as_text=True))})


def test_an_admin_issues_a_token_shown_once_and_rotating_stops_the_old_one(
        app, client, as_admin):
    page = client.get("/settings/sign-in")
    assert "None: provisioning is off." in page.get_data(as_text=True)
    first = issue(client)
    assert first.headers["Cache-Control"] == "no-store"
    secret = first.get_data(as_text=True).split("data-scim-token>")[1].split("<")[0]
    assert Api(app.test_client(), secret).get("/scim/v2/Users").status_code == 200
    assert secret not in client.get("/settings/sign-in").get_data(as_text=True)
    issue(client)
    assert Api(app.test_client(), secret).get("/scim/v2/Users").status_code == 401
    with app.app_context():
        stored = db.session.scalars(select(ScimToken.token_hash)).all()
        kinds = db.session.scalars(select(Event.kind)).all()
    assert secret not in stored and len(stored) == 2
    assert kinds.count("scim.token_issued") == 2


def test_revoking_turns_provisioning_off(app, client, as_admin):
    secret = issue(client).get_data(as_text=True).split("data-scim-token>")[1].split("<")[0]
    page = client.get("/settings/sign-in").get_data(as_text=True)
    answer = client.post("/settings/sign-in/scim-token/revoke",
                         data={"csrf_token": csrf_token_from(page)}, follow_redirects=True)
    assert "can no longer provision" in answer.get_data(as_text=True)
    assert Api(app.test_client(), secret).get("/scim/v2/Users").status_code == 401


def test_members_of_a_group_get_the_role_an_admin_maps_it_to(app, client, as_admin):
    with app.app_context():
        _, secret = tokens.issue(actor=None)
        db.session.commit()
    scim = Api(app.test_client(), secret)
    lee = scim.post("/scim/v2/Users", json={
        "schemas": [USER_SCHEMA], "userName": "lee@example.com",
        "emails": [{"value": "lee@example.com", "primary": True}]}).get_json()
    scim.post("/scim/v2/Groups", json={"schemas": [GROUP_SCHEMA], "displayName": "Help desk",
                                       "members": [{"value": lee["id"]}]})
    page = client.get("/settings/sign-in").get_data(as_text=True)
    assert "Help desk" in page and "lee@example.com" in page  # waiting for a passkey
    group_id = page.split("/settings/sign-in/scim-groups/")[1].split("/")[0]
    client.post(f"/settings/sign-in/scim-groups/{group_id}/role",
                data={"csrf_token": csrf_token_from(page), f"group{group_id}-role": "requestor"})
    assert scim.get(f"/scim/v2/Users/{lee['id']}").get_json()["active"] is True
    with app.app_context():
        assert db.session.get(User, int(lee["id"])).role == "requestor"


def test_only_admins_reach_the_scim_settings(client, auth, make_user):
    auth.login(make_user("reviewer"))
    assert client.get("/settings/sign-in").status_code == 403
    assert client.post("/settings/sign-in/scim-token").status_code in (400, 403)
