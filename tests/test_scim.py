"""SCIM 2.0 at /scim/v2: checked by scim2-tester (a checker no one here wrote), the PATCH
bodies Entra ID and Okta really send, and a leaver deactivated by the identity provider able
to do nothing here at once."""
import re
import time

import pytest
from scim2_client.engines.wsgi import WSGISCIMClient
from scim2_tester import Status, check_server
from sqlalchemy import select

from sendauth_dashboard.extensions import db
from sendauth_dashboard.models import Event, ScimGroup, Transaction, User
from sendauth_dashboard.runtime import runtime
from sendauth_dashboard.services.live.rights import Viewer
from sendauth_dashboard.services.provisioning import groups, tokens
from tests.support.api import Api, make_key
from tests.support.helpers import configure_email, configure_pagerduty, send_request
from tests.support.sse import live_stream
from tests.support.web import AuthActions

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"


@pytest.fixture
def scim_secret(app):
    with app.app_context():
        _, secret = tokens.issue(actor=None)
        db.session.commit()
    return secret


@pytest.fixture
def scim(client, scim_secret):
    return Api(client, scim_secret)


def provision(scim, email="lee@example.com", **extra):
    answer = scim.post("/scim/v2/Users", json={
        "schemas": [USER_SCHEMA], "userName": email, "active": True,
        "name": {"givenName": "Lee", "familyName": "Park"},
        "emails": [{"value": email, "type": "work", "primary": True}], **extra})
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()


def patch(scim, user_id, *operations):
    return scim.patch(f"/scim/v2/Users/{user_id}",
                      json={"schemas": [PATCH_SCHEMA], "Operations": list(operations)})


# About a hundred checks, 300 requests: seconds, so dealt to the head of a worker's share
# (conftest.py) rather than left for the end of the run.
@pytest.mark.slow
def test_scim2_tester_finds_no_failure(app, scim_secret):
    client = WSGISCIMClient(app, base_url=app.config["BASE_URL"] + "/scim/v2",
                            headers={"Authorization": f"Bearer {scim_secret}"})
    results = check_server(client)
    failures = [(r.title, r.reason) for r in results
                if r.status in (Status.ERROR, Status.CRITICAL)]
    assert failures == []
    assert sum(r.status == Status.SUCCESS for r in results) > 50


def test_without_the_current_token_scim_answers_401_as_a_scim_error(app, client, scim):
    assert client.get("/scim/v2/Users").status_code == 401
    with app.app_context():
        tokens.issue(actor=None)  # rotated: the fixture's token stops working
        db.session.commit()
    answer = scim.get("/scim/v2/Users")
    assert answer.status_code == 401
    assert answer.mimetype == "application/scim+json"
    assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    assert "Settings → Sign-in" in answer.get_json()["detail"]


def test_a_provisioned_person_is_found_by_user_name_and_gets_an_invitation(app, scim):
    created = provision(scim, "Lee@Example.com")
    listed = scim.get('/scim/v2/Users?filter=userName eq "lee@example.com"').get_json()
    assert listed["totalResults"] == 1
    assert listed["Resources"][0]["id"] == created["id"]
    assert scim.get('/scim/v2/Users?filter=userName eq "nobody@example.com"') \
        .get_json()["totalResults"] == 0
    with app.app_context():
        kinds = db.session.scalars(select(Event.kind).order_by(Event.id)).all()
        user = db.session.get(User, int(created["id"]))
        assert (user.email, user.name, user.role) == ("lee@example.com", "Lee Park", "member")
    assert kinds[-2:] == ["user.created", "user.enrolment_link_issued"]


def test_where_email_is_set_up_the_invitation_is_emailed_and_no_one_else_sees_it(
        app, scim, fake_smtp):
    configure_email(app, fake_smtp.port)
    created = provision(scim, "nora@example.com")
    fake_smtp.wait_for(lambda fake: len(fake.received) == 1)
    (mail,) = fake_smtp.received
    assert mail.rcpt_tos == ["nora@example.com"]
    token = re.search(r"/enrol/(\S+)", mail.body()).group(1)
    assert token not in str(created)
    with app.app_context():
        assert token not in str(db.session.execute(select(Event.data)).all())


def test_pages_of_users_follow_start_index_and_count(scim):
    for n in range(3):
        provision(scim, f"p{n}@example.com")
    page = scim.get("/scim/v2/Users?startIndex=2&count=1").get_json()
    assert (page["totalResults"], page["startIndex"], page["itemsPerPage"]) == (3, 2, 1)
    assert page["Resources"][0]["userName"] == "p1@example.com"


@pytest.mark.both_databases
def test_filters_find_people_by_user_name_or_external_id_and_groups_by_name(scim):
    lee = provision(scim, "lee@example.com", externalId="00u1lee")
    provision(scim, "kim@example.com", externalId="00u2kim")
    scim.post("/scim/v2/Groups", json={"schemas": [GROUP_SCHEMA], "displayName": "Help Desk"})
    for query in ('userName eq "LEE@example.com"', 'externalId eq "00u1lee"',
                  f'id eq "{lee["id"]}"'):
        found = scim.get("/scim/v2/Users", query_string={"filter": query}).get_json()
        assert [r["id"] for r in found.get("Resources", [])] == [lee["id"]], query
    assert scim.get("/scim/v2/Users", query_string={"filter": 'id eq "99999999999999999999"'}) \
        .get_json()["totalResults"] == 0
    assert scim.get("/scim/v2/Users/99999999999999999999").status_code == 404
    groups_found = scim.get("/scim/v2/Groups",
                            query_string={"filter": 'displayName eq "help desk"'}).get_json()
    assert groups_found["totalResults"] == 1


def test_a_filter_this_service_cannot_read_is_refused_saying_what_works(scim):
    answer = scim.get('/scim/v2/Users?filter=name.givenName sw "L"')
    assert answer.status_code == 400
    assert answer.get_json()["scimType"] == "invalidFilter"
    assert 'userName eq "value"' in answer.get_json()["detail"]


@pytest.mark.parametrize("operations", [
    # Entra ID: a capitalised op, the boolean as a string, a path with no filter
    [{"op": "Replace", "path": "active", "value": "False"}],
    # Okta: no path, the attributes in the value
    [{"op": "replace", "value": {"active": False}}],
], ids=["entra", "okta"])
def test_identity_provider_patches_deactivate_and_end_everything_at_once(
        app, client, scim, make_user, operations):
    """Sessions, API keys and waiting requests, in the same step."""
    configure_pagerduty(app)
    leaver = make_user("requestor", email="lee@example.com", notify_pagerduty=True)
    requestor = make_user("requestor")
    lee = {"id": str(leaver.id)}
    waiting = send_request(app, requestor, leaver)
    key = Api(app.test_client(), make_key(app, leaver, scopes=["transactions:read"]))
    assert key.get("/api/v1/transactions").status_code == 200

    answer = patch(scim, lee["id"], *operations)

    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["active"] is False
    assert key.get("/api/v1/transactions").status_code == 401
    with app.app_context():
        assert db.session.get(User, leaver.id).active is False
        status = db.session.scalar(select(Transaction.status)
                                   .where(Transaction.public_id == waiting))
        events = db.session.scalars(select(Event).order_by(Event.id.desc()).limit(2)).all()
    assert status == "cancelled"
    assert {e.kind for e in events} == {"user.deactivated", "transaction.cancelled"}
    assert all(e.data.get("via") == "scim" for e in events)


def test_entra_s_periodic_active_true_changes_nothing(app, scim):
    lee = provision(scim)
    answer = patch(scim, lee["id"], {"op": "Replace", "path": "active", "value": "True"},
                   {"op": "Add", "path": "displayName", "value": "Lee P."})
    assert answer.get_json()["active"] is True
    with app.app_context():
        assert db.session.get(User, int(lee["id"])).name == "Lee P."


def test_deactivation_ends_the_signed_in_session_at_its_next_request(app, scim, make_user):
    member = make_user("requestor", email="sam@example.com")
    browser = app.test_client()
    AuthActions(browser).login(member)
    assert browser.get("/transactions/").status_code == 200
    found = scim.get('/scim/v2/Users?filter=userName eq "sam@example.com"').get_json()
    assert patch(scim, found["Resources"][0]["id"],
                 {"op": "replace", "path": "active", "value": False}).status_code == 200
    assert browser.get("/transactions/").status_code in (302, 401)


def test_deactivation_ends_an_open_stream_within_a_heartbeat(app, scim, stream_people,
                                                            make_user):
    otto, uma = stream_people[1:]
    reviewer = make_user("reviewer", email="rita@example.com")
    with app.app_context():
        viewer = Viewer.of(db.session.get(User, reviewer.id))
    with app.test_request_context():
        body = live_stream(viewer, runtime(app).broker)  # 0.05 s heartbeats, 30 s lifetime
        assert scim.delete(f"/scim/v2/Users/{reviewer.id}").status_code == 204
        began = time.monotonic()
        send_request(app, otto, uma)  # what a reviewer would see, were the stream still open
        frames = list(body)
        ended_after = time.monotonic() - began
    assert not any(frame.startswith("data:") or "\ndata:" in frame for frame in frames)
    assert ended_after < 10  # a heartbeat, not the stream's 30 s lifetime


def test_delete_deactivates_never_removes_and_scim_no_longer_finds_them(app, scim):
    lee = provision(scim)
    assert scim.delete(f"/scim/v2/Users/{lee['id']}").status_code == 204
    assert scim.get(f"/scim/v2/Users/{lee['id']}").status_code == 404
    assert scim.get('/scim/v2/Users?filter=userName eq "lee@example.com"') \
        .get_json()["totalResults"] == 0
    with app.app_context():
        assert db.session.get(User, int(lee["id"])).active is False
    again = provision(scim)  # the directory assigns them again: the same account, active
    assert again["id"] == lee["id"] and again["active"] is True


def test_a_group_gives_its_role_and_leaving_it_deactivates(app, scim, admin):
    lee = provision(scim)
    group = scim.post("/scim/v2/Groups", json={
        "schemas": [GROUP_SCHEMA], "displayName": "SendAuth reviewers"}).get_json()
    with app.app_context():
        row = db.session.scalar(select(ScimGroup).where(ScimGroup.public_id == group["id"]))
        groups.set_role(row, "reviewer", actor=db.session.get(User, admin.id))
        db.session.commit()
    url = f"/scim/v2/Groups/{group['id']}"
    body = {"schemas": [PATCH_SCHEMA], "Operations": [
        {"op": "Add", "path": "members", "value": [{"value": lee["id"]}]}]}
    assert scim.patch(url, json=body).status_code == 200
    with app.app_context():
        assert db.session.get(User, int(lee["id"])).role == "reviewer"
    # Entra removes a member with a value that says which, Okta with a filter in the path
    body["Operations"] = [{"op": "Remove", "path": "members", "value": [{"value": lee["id"]}]}]
    assert scim.patch(url, json=body).status_code == 200
    with app.app_context():
        assert db.session.get(User, int(lee["id"])).active is False
    body["Operations"] = [{"op": "Add", "path": "members", "value": [{"value": lee["id"]}]}]
    scim.patch(url, json=body)
    with app.app_context():
        assert db.session.get(User, int(lee["id"])).active is True
    body["Operations"] = [{"op": "Remove", "path": f'members[value eq "{lee["id"]}"]'}]
    assert scim.patch(url, json=body).status_code == 200
    assert scim.get(url).get_json().get("members") is None
    with app.app_context():
        assert db.session.get(User, int(lee["id"])).active is False


def test_the_last_admin_cannot_be_deactivated_by_the_directory(scim, admin):
    answer = scim.delete(f"/scim/v2/Users/{admin.id}")
    assert answer.status_code == 400
    assert "last active admin" in answer.get_json()["detail"]


def test_scim_token_command_prints_a_token_that_works_once_shown(app, runner, client):
    result = runner.invoke(args=["scim-token"])
    secret = result.output.split()[-1]
    assert secret.startswith("scim_")
    assert Api(client, secret).get("/scim/v2/ServiceProviderConfig").status_code == 200
    with app.app_context():
        assert secret not in str(db.session.execute(select(Event.data)).all())
