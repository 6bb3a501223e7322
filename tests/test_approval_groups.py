"""Approval groups: a request sent to a group reaches every member with their own link, is
verified once the threshold of members verify, denied at the first deny; the requestor in the
group cannot approve their own; the group as it was when the request was sent decides it; a
tag routes to a group; each answer reaches a watcher live; the payload reaches the webhook."""
import json
import threading

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from sendauth_dashboard.core.secrets import decrypt
from sendauth_dashboard.extensions import db
from sendauth_dashboard.models import Approval, Delivery, Transaction, User
from sendauth_dashboard.runtime import runtime
from sendauth_dashboard.services.approvals import group_requests, groups
from sendauth_dashboard.services.live.rights import Viewer
from sendauth_dashboard.services.live.words import describe
from sendauth_dashboard.services.messages import wording
from sendauth_dashboard.services.outbox import deliveries
from sendauth_dashboard.services.requests import delivery_report, transactions
from sendauth_dashboard.services.webhooks import endpoints
from sendauth_dashboard.services.webhooks.sender import Sender
from tests.support.api import Api, make_key
from tests.support.helpers import configure_pagerduty, configure_sms, dispatch, send_request
from tests.support.sse import live_stream
from tests.support.web import csrf_token_from


@pytest.fixture
def people(app, make_user, admin):
    configure_pagerduty(app)
    on_call = {"notify_pagerduty": True}
    return {"agent": make_user("requestor", email="agent@example.com", name="Agnes Agent"),
            "ann": make_user("member", email="ann@example.com", name="Ann Approver", **on_call),
            "bob": make_user("member", email="bob@example.com", name="Bob Approver", **on_call),
            "cy": make_user("member", email="cy@example.com", name="Cy Approver", **on_call),
            "admin": admin}


@pytest.fixture
def apis(app, client, people):
    return (Api(client, make_key(app, people["admin"], scopes=[
                "groups:manage", "routing:manage", "audit:read"])),
            Api(client, make_key(app, people["agent"])))


def add_group(admin_api, name="Security", members=("ann", "bob", "cy"), threshold=2):
    answer = admin_api.post("/api/v1/approval-groups", json={
        "name": name, "members": [f"{m}@example.com" for m in members],
        "threshold": threshold})
    assert answer.status_code == 201, answer.json
    return answer.json


def send(agent_api, **body):
    answer = agent_api.post("/api/v1/transactions", json={
        "group": "Security", "message": "Grant temporary admin access", **body})
    assert answer.status_code == 201, answer.json
    return answer.json


def link_of(app, public_id, member):
    """The token in the member's own link, read back from the outbox as a channel would."""
    with app.app_context():
        ciphertext = db.session.scalar(select(Delivery.link_ciphertext).join(Transaction).where(
            Transaction.public_id == public_id, Delivery.user_id == member.id))
        return None if ciphertext is None else decrypt(ciphertext).rsplit("/", 1)[1]


def answer(app, client, public_id, member, decision="verify"):
    """The member answers signed out, with their own passkey (no code)."""
    token = link_of(app, public_id, member)
    page = client.get(f"/authenticate/{token}")
    if page.status_code != 200:
        return page
    assert 'name="code"' not in page.text
    csrf = csrf_token_from(page.text)
    options = client.post(f"/authenticate/{token}/passkey-options",
                          headers={"X-CSRFToken": csrf})
    assert options.status_code == 200, options.text
    return client.post(f"/authenticate/{token}", data={
        "csrf_token": csrf, "decision": decision,
        "credential": json.dumps(member.authenticator.get(options.get_json()))})


def status_of(agent_api, public_id):
    return agent_api.get(f"/api/v1/transactions/{public_id}").json


def test_two_of_three_verify_and_the_request_is_verified(app, client, people, apis):
    admin_api, agent_api = apis
    add_group(admin_api)
    sent = send(agent_api)
    assert sent["code"] is None and sent["group"]["approvals_needed"] == 2
    assert [m["answer"] for m in sent["group"]["members"]] == ["waiting"] * 3
    with app.app_context():
        notified = db.session.scalars(select(Delivery.user_id).join(Transaction).where(
            Transaction.public_id == sent["id"])).all()
    assert sorted(notified) == sorted(people[m].id for m in ("ann", "bob", "cy"))
    assert len({link_of(app, sent["id"], people[m]) for m in ("ann", "bob", "cy")}) == 3
    first = answer(app, client, sent["id"], people["ann"])
    assert first.status_code == 200 and "1 more approval is needed" in first.text
    assert status_of(agent_api, sent["id"])["status"] == "pending"
    again = answer(app, client, sent["id"], people["ann"])  # single use: no second vote
    assert again.status_code == 410
    assert answer(app, client, sent["id"], people["bob"]).status_code == 200
    done = status_of(agent_api, sent["id"])
    assert done["status"] == "verified" and done["group"]["approvals_needed"] == 0
    assert [m["answer"] for m in done["group"]["members"]] == ["verified", "verified",
                                                               "waiting"]
    timeline = [e["text"] for e in agent_api.get(
        f"/api/v1/transactions/{sent['id']}/events").json["items"]]
    assert "Ann Approver approved it for Security: 1 more approval needed" in timeline
    assert "Verified: Bob Approver gave the last approval Security needed" in timeline


def test_one_deny_denies_at_once(app, client, people, apis):
    admin_api, agent_api = apis
    add_group(admin_api)
    sent = send(agent_api)
    ann_link = link_of(app, sent["id"], people["ann"])
    assert answer(app, client, sent["id"], people["cy"], "deny").status_code == 200
    assert status_of(agent_api, sent["id"])["status"] == "denied"
    assert client.get(f"/authenticate/{ann_link}").status_code == 410


def test_the_requestor_in_the_group_is_not_asked_and_cannot_approve(app, client, people,
                                                                    apis, make_user):
    admin_api, _ = apis
    boss = make_user("requestor", email="boss@example.com", name="Bo Boss",
                     notify_pagerduty=True)
    add_group(admin_api, members=("boss", "ann", "bob"), threshold=2)
    boss_api = Api(client, make_key(app, boss))
    sent = send(boss_api)
    mine = next(m for m in sent["group"]["members"] if m["member"]["email"] == boss.email)
    assert mine["answer"] == "not asked" and "own request" in mine["not_asked"]
    assert link_of(app, sent["id"], boss) is None
    add_group(admin_api, name="Pair", members=("boss", "ann"), threshold=2)
    refused = boss_api.post("/api/v1/transactions", json={"group": "Pair", "message": "Hi"})
    assert refused.status_code == 422
    assert "only 1 of its members can be asked" in refused.json["detail"]


def test_a_change_to_the_group_after_sending_does_not_change_the_request(app, client, people,
                                                                         apis):
    admin_api, agent_api = apis
    group = add_group(admin_api)
    sent = send(agent_api)
    changed = admin_api.patch(f"/api/v1/approval-groups/{group['id']}", json={
        "members": ["ann@example.com"], "threshold": 1})
    assert changed.status_code == 200, changed.json
    assert answer(app, client, sent["id"], people["ann"]).status_code == 200
    assert status_of(agent_api, sent["id"])["status"] == "pending", "still needs two"
    assert answer(app, client, sent["id"], people["cy"]).status_code == 200  # removed, asked
    assert status_of(agent_api, sent["id"])["status"] == "verified"
    audit = [e["text"] for e in admin_api.get("/api/v1/audit").json["items"]]
    assert ("Ada Admin changed the approval group 'Security': 1 of 1 must approve "
            "(ann@example.com), was 2 of 3 must approve (ann@example.com, bob@example.com, "
            "cy@example.com)") in audit
    assert any(t.startswith("Ada Admin added the approval group 'Security'") for t in audit)


@pytest.mark.parametrize("members, threshold, status, words", [
    (("ann", "bob"), 3, 422, "a number from 1 to 2"),
    (("ann", "nobody"), 1, 422, "No active user has the email nobody@example.com"),
])
def test_a_group_that_cannot_be_made_says_why(apis, people, members, threshold, status, words):
    admin_api, _ = apis
    answer = admin_api.post("/api/v1/approval-groups", json={
        "name": "Security", "members": [f"{m}@example.com" for m in members],
        "threshold": threshold})
    assert answer.status_code == status and words in answer.json["detail"], answer.json


def test_a_tagged_request_reaches_the_finance_group_by_a_rule(app, people, apis):
    admin_api, agent_api = apis
    group = add_group(admin_api, name="Finance", members=("ann", "bob"), threshold=1)
    rule = admin_api.post("/api/v1/routing-rules", json={"key": "team", "value": "finance",
                                                         "group": "Finance"})
    assert rule.status_code == 201 and rule.json["group"] == "Finance", rule.json
    sent = agent_api.post("/api/v1/transactions", json={"tags": {"team": "finance"},
                                                        "message": "Approve the wire"})
    assert sent.status_code == 201, sent.json
    assert sent.json["group"]["name"] == "Finance"
    timeline = agent_api.get(f"/api/v1/transactions/{sent.json['id']}/events").json["items"]
    assert "routed by the rule 1: team=finance → the group Finance" in timeline[0]["text"]
    kept = admin_api.delete(f"/api/v1/approval-groups/{group['id']}")
    assert kept.status_code == 422 and "Routing rule 1" in kept.json["detail"]


def test_each_answer_reaches_a_watcher_live(app, client, people, apis):
    admin_api, agent_api = apis
    add_group(admin_api)
    sent = send(agent_api)
    with app.app_context():
        viewer = Viewer.of(db.session.get(User, people["agent"].id))
    with app.test_request_context():
        body = live_stream(viewer, runtime(app).broker)
        answer(app, client, sent["id"], people["bob"])
        frame = next(f for f in body if "approval.verified" in f)
        body.close()
    assert "Bob Approver approved it for Security: 1 more approval needed" in frame


def test_the_payload_reaches_the_webhook_when_the_request_ends(app, client, people, apis,
                                                               receiver):
    app.config["WEBHOOKS_ALLOW_PRIVATE_NETWORKS"] = True
    with app.app_context():
        _, secret = endpoints.create(receiver.base_url + "/hooks", "Help desk",
                                     ["transaction.verified"], True, actor=None)
        db.session.commit()
    receiver.secrets.append(secret)
    admin_api, agent_api = apis
    add_group(admin_api, threshold=1)
    big = agent_api.post("/api/v1/transactions", json={
        "group": "Security", "message": "Hi", "payload": {"blob": "x" * 9000}})
    assert big.status_code == 422 and "at most 8192 bytes" in big.json["detail"]
    sent = send(agent_api, payload={"grant": "admin", "account": "42"})
    assert sent["payload"] == {"grant": "admin", "account": "42"}
    token = link_of(app, sent["id"], people["cy"])
    answer(app, client, sent["id"], people["cy"])
    Sender(app, name="test-sender").run_until_idle()
    (hook,) = receiver.verified
    assert hook.payload["type"] == "transaction.verified"
    assert hook.payload["data"]["payload"] == {"grant": "admin", "account": "42"}
    assert hook.payload["data"]["group"]["approved_by"][0]["email"] == "cy@example.com"
    assert token not in json.dumps(hook.payload)


def test_an_admin_makes_a_group_on_its_page_and_a_requestor_sends_to_it(app, client, as_admin,
                                                                        people):
    page = "/settings/approval-groups"
    refused = as_admin.post(page, {"name": "Security", "members": "ann@example.com",
                                   "threshold": "2"}, token_page=page)
    assert refused.status_code == 400 and "a number from 1 to 1" in refused.text
    made = as_admin.post(page, {"name": "Security", "threshold": "2",
                                "members": "ann@example.com\nbob@example.com"}, token_page=page)
    assert made.status_code == 302, made.text
    assert "Ann Approver" in client.get(page).text
    rule = as_admin.post("/settings/routing", {"key": "team", "value": "security", "user": "",
                                               "group": "Security"}, token_page="/settings/routing")
    assert rule.status_code == 302, rule.text
    assert "The group Security" in client.get("/settings/routing").text
    as_admin.logout()
    as_admin.login(people["agent"])
    form = client.get("/transactions/new").text
    assert "Security (2 of 2 approve)" in form
    with app.app_context():
        group_id = groups.find_by_name("Security").id
    sent = as_admin.post("/transactions/new", {"group": str(group_id), "user": "",
                                               "message": "Grant admin for an hour"},
                         token_page="/transactions/new")
    assert sent.status_code == 302, sent.text
    shown = client.get(sent.headers["Location"])
    assert "Request to Security" in shown.text and 'data-member-id' in shown.text
    assert '<span data-field="approvals-needed">2</span>' in shown.text
    both = as_admin.post("/transactions/new", {"group": str(group_id), "message": "Hi",
                                               "user": "ann@example.com"},
                         token_page="/transactions/new")
    assert both.status_code == 400 and "not both" in both.text


def test_each_member_gets_their_own_sms_with_the_group_placeholders(app, admin, make_user,
                                                                    fake_twilio):
    app.config["TWILIO_API_URL"] = fake_twilio.base_url
    configure_sms(app)
    template = "{requestor} asks {group} ({approvals_needed} more needed) for {user}: {link}"
    with app.app_context():
        wording.save({"sms_body": template}, actor=None)
        db.session.commit()
    texting = {"notify_email": False, "notify_sms": True}
    dee = make_user("member", name="Dee", phone="+14155550101", **texting)
    eve = make_user("member", name="Eve", phone="+14155550102", **texting)
    with app.app_context():
        group = groups.create(name="Security", member_emails=[dee.email, eve.email],
                              threshold=2, actor=None)
        group_requests.create(requestor=db.session.get(User, admin.id), group=group,
                              message="Grant admin")
        db.session.commit()
    assert dispatch(app) == ["sent", "sent"]
    texts = {sms["To"]: sms["Body"] for sms in fake_twilio.messages}
    assert set(texts) == {"+14155550101", "+14155550102"}
    assert texts["+14155550101"].startswith("Ada Admin asks Security (2 more needed) for Dee: ")
    assert texts["+14155550102"].startswith("Ada Admin asks Security (2 more needed) for Eve: ")
    assert len({body.rsplit(" ", 1)[1] for body in texts.values()}) == 2, "links differ"
    with app.app_context():
        t = db.session.scalar(select(Transaction))
        rows = {(r.key, r.member, r.state) for r in delivery_report.rows(t)}
        lines = [describe(e.kind, e.data, None) for e in transactions.timeline(t)]
    assert rows == {(f"sms.{dee.id}", "Dee", "sent"), (f"sms.{eve.id}", "Eve", "sent")}
    assert any(line.startswith("To Dee: Twilio accepted") for line in lines), lines


def test_the_page_says_who_of_the_group_approved(app, client, auth, people, apis):
    admin_api, agent_api = apis
    add_group(admin_api, threshold=1)
    sent = send(agent_api)
    answer(app, client, sent["id"], people["bob"])
    auth.login(people["agent"])
    page = client.get(f"/transactions/{sent['id']}").text
    assert "1 of Security approved it, the last Bob Approver" in page
    assert "approval group" in client.get("/transactions/").text


@pytest.mark.browser
def test_each_members_answer_shows_live_on_the_page(browser, live_server, fake_pagerduty):
    """The requestor's page: each member's row turns "approved" and the count of approvals
    still needed goes down, without a reload; it and a member's answer page are axe-clean."""
    from playwright.sync_api import expect

    from tests.support.accounts import create_user
    from tests.support.browser import LIVE, axe_violations, signed_in

    app = live_server.app
    configure_pagerduty(app)
    agent = create_user(app, "requestor", "agent@example.com", "Agnes Agent")
    ann, bob = (create_user(app, "member", f"{n}@example.com", f"{n.title()} Approver",
                            notify_pagerduty=True) for n in ("ann", "bob"))
    with app.app_context():
        group = groups.create(name="Security", member_emails=[ann.email, bob.email],
                              threshold=2, actor=None)
        sent = group_requests.create(requestor=db.session.get(User, agent.id), group=group,
                                     message="Grant admin for an hour")
        db.session.commit()
        public_id = sent.public_id
    page = signed_in(browser, live_server, agent, f"/transactions/{public_id}")
    expect(page.locator("[data-live-indicator]")).to_have_attribute("data-state", "live",
                                                                    timeout=LIVE)
    with app.app_context():
        t = db.session.scalar(select(Transaction).where(Transaction.public_id == public_id))
        approval = next(a for a in t.approvals if a.user_id == bob.id)
        group_requests.answer(approval, "verify", proof="passkey")
        db.session.commit()
    expect(page.locator(f'[data-member-id="{bob.id}"] [data-answer]')).to_have_text(
        "approved", timeout=LIVE)
    expect(page.locator('[data-field="approvals-needed"]')).to_have_text("1")
    expect(page.locator(f'[data-member-id="{ann.id}"] [data-answer]')).to_have_text("waiting")
    assert axe_violations(page) == []
    fake_pagerduty.wait_for(lambda fake: len(fake.incidents) == 2)
    links = {dedup: body["links"][0]["href"]
             for (_, dedup), body in fake_pagerduty.incidents.items()}
    assert set(links) == {public_id, f"{public_id}.{bob.id}"}, "one incident per member"
    assert len(set(links.values())) == 2, "each carries its member's own link"
    ann_link = links[public_id]  # the first member asked keeps the request's own dedup key
    answering = signed_in(browser, live_server, None, "/" + ann_link.split("/", 3)[3])
    expect(answering.get_by_role("heading", level=1)).to_have_text(
        "Agnes Agent asks Security to approve")
    assert axe_violations(answering) == []


@pytest.mark.both_databases
def test_two_members_approving_at_once_both_count_and_verify_it_once(app, people):
    agent = people["agent"]
    with app.app_context():
        group = groups.create(name="Security", member_emails=["ann@example.com",
                                                              "bob@example.com"],
                              threshold=2, actor=None)
        public_id = group_requests.create(requestor=db.session.get(User, agent.id),
                                          group=group, message="Grant admin").public_id
        db.session.commit()
    barrier, outcomes = threading.Barrier(2), []

    def approve(member):
        with app.app_context():
            approval = db.session.scalar(select(Approval).join(Transaction).where(
                Transaction.public_id == public_id, Approval.user_id == member.id))
            barrier.wait()
            outcomes.append(group_requests.answer(approval, "verify", proof="passkey").changed)
            db.session.commit()

    threads = [threading.Thread(target=approve, args=(people[m],)) for m in ("ann", "bob")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert outcomes == [True, True]
    with app.app_context():
        t = db.session.scalar(select(Transaction).where(Transaction.public_id == public_id))
        kinds = [e.kind for e in transactions.timeline(t)]
    assert t.status == "verified"
    assert kinds.count("approval.verified") == 2 and kinds.count("transaction.verified") == 1


@pytest.mark.both_databases  # PostgreSQL's ids are 32 bits: a longer number is no id at all
def test_a_group_that_is_not_there_is_a_clear_error_not_a_crash(app, client, auth, people):
    auth.login(people["agent"])
    for chosen in ("99999999999999999999", "7", "x"):
        sent = auth.post("/transactions/new", {"group": chosen, "message": "Hi", "user": ""},
                         token_page="/transactions/new")
        assert sent.status_code == 400 and "Enter the user" in sent.text
    agent_api = Api(client, make_key(app, people["agent"]))
    refused = agent_api.post("/api/v1/transactions", json={"group": "Sec\u0000urity",
                                                           "message": "Hi"})
    assert refused.status_code == 422 and "no approval group named" in refused.json["detail"]


@pytest.mark.both_databases
def test_a_request_to_one_person_still_has_one_delivery_per_channel_in_the_database(app,
                                                                                   people):
    """Deliveries are unique per member now; a one-person request's have no member (NULL,
    which never clashes in a unique constraint), so a partial index keeps them one per
    channel: the outbox's guard against a second page, not only the code's."""
    public_id = send_request(app, people["agent"], people["ann"])
    with app.app_context():
        t = db.session.scalar(select(Transaction).where(Transaction.public_id == public_id))
        assert [d.channel for d in t.deliveries] == ["pagerduty"]
        db.session.add_all(deliveries.enqueue(t, ["pagerduty"], "http://sendauth.test/x"))
        with pytest.raises(IntegrityError):
            db.session.flush()
        db.session.rollback()
