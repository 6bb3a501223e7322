"""Every time a person reads is in their zone (UTC on hover), and every event is told in
words: the pages draw each time with templates/_macros/time.html, never as UTC text."""
import re
from datetime import timedelta

from sqlalchemy import select

from sendauth_dashboard.core import event_kinds, event_log
from sendauth_dashboard.extensions import db
from sendauth_dashboard.models import Transaction, User, utcnow
from sendauth_dashboard.services.live import words
from sendauth_dashboard.services.people import enrolment
from tests.support.helpers import configure_pagerduty, send_request

# A time written as UTC text ("23:39:08 UTC", "2026-12-07 06:08 UTC").
RAW_UTC = re.compile(r"\d\d:\d\d(:\d\d)? UTC")
# What times.js shows in the reader's zone: the <time data-local> elements.
LOCAL = re.compile(r"<time datetime=\"[^\"]+\" data-local>[^<]*</time>")


def raw_utc(html):
    """The times written in UTC outside a <time data-local> (and outside its hover text)."""
    return [m.group(0) for m in RAW_UTC.finditer(LOCAL.sub("", html))]


def visible_text(html):
    body = html.split("<main", 1)[1]
    return re.sub(r"<[^>]+>", " ", body)


def seed(app, admin, make_user):
    """A request whose PagerDuty notification is being retried, an enrolment link issued, a
    passkey registered and a sign-in: the times the listed pages show."""
    configure_pagerduty(app)
    requestor = make_user("requestor", name="Hana Helpdesk")
    member = make_user("member", email="uma@example.com", name="Uma User",
                       notify_pagerduty=True)
    public_id = send_request(app, requestor, member)
    with app.app_context():
        transaction = db.session.scalar(select(Transaction).filter_by(public_id=public_id))
        event_log.record(event_kinds.DELIVERY_RETRYING, transaction=transaction, data={
            "channel": "pagerduty", "attempt": 1, "error": "HTTP 429: Too Many Requests",
            "next_attempt_at": (utcnow() + timedelta(seconds=30)).isoformat()})
        token = enrolment.issue(db.session.get(User, member.id),
                                actor=db.session.get(User, admin.id), kind="invitation")
        event_log.record("approval_policy.created", actor=db.session.get(User, admin.id),
                         data={"name": "Finance"})
        db.session.commit()
    return public_id, token


def test_no_listed_page_writes_a_time_in_utc_text(app, client, as_admin, admin, make_user):
    public_id, token = seed(app, admin, make_user)
    pages = ["/", "/settings/users", "/settings/audit", "/settings/channels",
             f"/transactions/{public_id}"]
    found = {}
    for path in pages:
        response = client.get(path)
        assert response.status_code == 200, path
        if times := raw_utc(response.text):
            found[path] = times
    as_admin.logout()
    enrol = client.get(f"/enrol/{token}")
    assert enrol.status_code == 200
    if times := raw_utc(enrol.text):
        found["/enrol/<token>"] = times
    assert found == {}


def test_the_timeline_says_when_a_retry_comes_in_the_readers_zone(app, client, as_admin,
                                                                  admin, make_user):
    public_id, _ = seed(app, admin, make_user)
    page = client.get(f"/transactions/{public_id}").text
    assert re.search(r"trying again at <time datetime=\"[^\"]+Z\" data-local>", page)


def test_the_audit_log_tells_every_event_in_words_never_its_code(app, client, as_admin, admin,
                                                                make_user):
    seed(app, admin, make_user)
    text = visible_text(client.get("/settings/audit").text)
    assert "Ada Admin issued an invitation for uma@example.com" in text
    assert "Approval policy created" in text
    codes = re.findall(r"\b[a-z]+(?:_[a-z]+)*\.[a-z]+_[a-z_]+\b|\b[a-z_]+\.created\b", text)
    assert codes == []


def test_a_kind_with_no_words_yet_is_named_in_words():
    assert words.describe("user.enrolment_link_issued_later", {}) == \
        "Enrolment link issued later"
    assert words.describe("approval_policy.created", {}) == "Approval policy created"


def test_what_people_typed_into_an_event_stays_text_beside_its_time(app, client, as_admin,
                                                                    admin):
    with app.app_context():
        event_log.record(event_kinds.WEBHOOK_SECRET_ROTATED, actor=db.session.get(User, admin.id),
                         data={"url": "https://example.com/<b>hook</b>",
                               "old_until": utcnow().isoformat()})
        db.session.commit()
    page = client.get("/settings/audit").text
    assert "https://example.com/&lt;b&gt;hook&lt;/b&gt;" in page and "<b>hook" not in page
    assert re.search(r"the old one signs until <time datetime=\"[^\"]+Z\" data-local>", page)
