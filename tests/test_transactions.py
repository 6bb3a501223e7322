"""Sending requests, watching them, cancelling them, and their lifecycle."""
import re
import threading
from datetime import timedelta

import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import func, select, update

from sendauth_dashboard.extensions import db
from sendauth_dashboard.models import Delivery, Event, Transaction, User, utcnow
from sendauth_dashboard.services.requests import transaction_list, transactions
from tests.support.helpers import configure_pagerduty, send_request
from tests.support.web import AuthActions


@pytest.fixture
def people(app, make_user):
    configure_pagerduty(app)
    return (make_user("requestor", name="Hana Helpdesk"),
            make_user("member", name="Uma User", email="uma@example.com", notify_pagerduty=True))


@pytest.fixture
def as_requestor(auth, people):
    auth.login(people[0])
    return auth


def counts(app):
    with app.app_context():
        return tuple(db.session.scalar(select(func.count(m.id))) for m in (Transaction, Delivery,
                                                                           Event))


def get(app, public_id):
    with app.app_context():
        return db.session.scalar(select(Transaction).where(Transaction.public_id == public_id))


def make_overdue(app, public_id):
    with app.app_context():
        db.session.execute(update(Transaction).where(Transaction.public_id == public_id)
                           .values(expires_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()


def cancel(app, public_id):
    with app.app_context():
        t = db.session.scalar(select(Transaction).where(Transaction.public_id == public_id))
        transactions.cancel(t, actor=t.requestor)
        db.session.commit()


def new_form(**overrides):
    form = {"user": "uma@example.com", "message": "Please confirm the MFA reset",
            "context": "Ticket #4521"}
    form.update(overrides)
    return form


# -- sending -------------------------------------------------------------------------------

def test_a_requestor_sends_a_request_and_lands_on_its_page(app, client, as_requestor, people):
    before = counts(app)
    response = as_requestor.post("/transactions/new", new_form(user="  UMA@example.com "),
                                 token_page="/transactions/new")
    assert response.status_code == 302
    public_id = response.headers["Location"].rsplit("/", 1)[1]
    page = client.get(response.headers["Location"]).text
    assert "Request sent to Uma User through PagerDuty." in page
    assert "Hana Helpdesk sent the request through PagerDuty" in page
    t = get(app, public_id)
    assert (t.status, t.message, t.context) == ("pending", "Please confirm the MFA reset",
                                                "Ticket #4521")
    assert t.expires_at - t.created_at == timedelta(seconds=300)
    assert re.fullmatch(r"[0-9a-f]{64}", t.token_hash)
    assert counts(app) == (before[0] + 1, before[1] + 1, before[2] + 1)


def test_sending_reads_nothing_from_the_database_after_its_commit(app, as_requestor, people):
    """After the commit the event is on its way to every watcher; a query then (re-reading
    what was just written) would make the requestor's answer wait behind that fan-out."""
    statements = []
    with app.app_context():
        engine = db.engine

    def seen(conn, cursor, statement, *args):
        statements.append(statement)

    def committed(conn):
        statements.append("COMMIT")

    sa_event.listen(engine, "before_cursor_execute", seen)
    sa_event.listen(engine, "commit", committed)
    try:
        response = as_requestor.post("/transactions/new", new_form(),
                                     token_page="/transactions/new")
    finally:
        sa_event.remove(engine, "before_cursor_execute", seen)
        sa_event.remove(engine, "commit", committed)
    assert response.status_code == 302
    after = statements[len(statements) - statements[::-1].index("COMMIT"):]
    assert not [s for s in after if s.lstrip().upper().startswith("SELECT")], after


def test_a_message_keeps_its_line_breaks_and_tabs(app, people):
    t = get(app, send_request(app, *people, message="Line one\r\nLine two\twith a tab",
                              context="INC-7\nINC-8"))
    assert (t.message, t.context) == ("Line one\nLine two\twith a tab", "INC-7\nINC-8")


def test_the_time_to_live_is_configurable(app, people):
    app.config["TRANSACTION_TTL_SECONDS"] = 60
    t = get(app, send_request(app, *people))
    assert t.expires_at - t.created_at == timedelta(seconds=60)


@pytest.mark.parametrize("overrides, message", [
    ({"user": "nobody@example.com"},
     "There is no active user with the email &#39;nobody@example.com&#39;"),
    ({"user": "not an email"}, "There is no active user with the email"),
    ({"user": ""}, "Enter the user&#39;s email."),
    ({"message": "   "}, "Enter a message"),
    ({"message": "m" * 1025}, "The message must be at most 1024 characters; yours has 1025."),
    ({"context": "c" * 2000}, "The context must be at most 1024 characters; yours has 2000."),
    ({"message": "Reset\rSubject: x"}, "The message contains a line break (U+000D)"),
    ({"context": "INC-7\x07"}, "The context contains a control character (U+0007)"),
    ({"user": "requestor1@example.com"}, "You cannot send an authentication request to yourself."),
])
def test_bad_requests_get_a_message_and_write_nothing(app, as_requestor, overrides, message):
    before = counts(app)
    response = as_requestor.post("/transactions/new", new_form(**overrides))
    assert response.status_code == 400
    assert message in response.text
    assert counts(app) == before


def test_a_deactivated_user_cannot_be_sent_a_request(app, as_requestor, people):
    with app.app_context():
        db.session.get(User, people[1].id).active = False
        db.session.commit()
    response = as_requestor.post("/transactions/new", new_form())
    assert "There is no active user with the email" in response.text


def test_a_user_no_channel_reaches_is_refused_saying_which_channels_are_off(app, as_requestor,
                                                                             make_user):
    make_user("member", name="Quiet Quinn", email="quinn@example.com")
    before = counts(app)
    response = as_requestor.post("/transactions/new", new_form(user="quinn@example.com"))
    assert response.status_code == 400
    assert "No channel can reach Quiet Quinn. PagerDuty: off in their messaging preferences" in \
        response.text
    assert counts(app) == before


@pytest.mark.both_databases
# -- watching ------------------------------------------------------------------------------

def test_requestors_see_the_ones_they_sent_and_reviewers_see_all(app, client, auth, people,
                                                                 make_user):
    requestor, user = people
    other = make_user("requestor", name="Otto Other")
    mine = send_request(app, requestor, user, message="mine")
    theirs = send_request(app, other, user, message="theirs")
    auth.login(requestor)
    page = client.get("/transactions/").text
    assert mine in page and theirs not in page
    assert client.get(f"/transactions/{theirs}").status_code == 404
    auth.logout()
    auth.login(make_user("reviewer"))
    page = client.get("/transactions/").text
    assert page.index(theirs) < page.index(mine), "newest first"


@pytest.mark.both_databases
def test_the_list_filters_by_status_user_and_requestor_kept_in_the_url(app, client, auth, people,
                                                                       make_user):
    requestor, user = people
    other_user = make_user("member", email="olga@example.com", notify_pagerduty=True)
    a = send_request(app, requestor, user)
    b = send_request(app, requestor, other_user)
    cancel(app, b)
    auth.login(make_user("reviewer"))
    page = client.get("/transactions/?status=cancelled").text
    assert b in page and a not in page
    page = client.get("/transactions/?user=UMA@example.com").text
    assert a in page and b not in page
    page = client.get(f"/transactions/?requestor={requestor.email}&status=pending").text
    assert a in page and b not in page
    assert 'data-filter-status="pending"' in page
    for url in ("/transactions/", "/transactions/?status=bogus"):
        response = client.get(url)
        assert response.status_code == 200
        assert "field-errors" not in response.text


@pytest.mark.both_databases
def test_the_list_is_paged_newest_first(app, client, auth, people):
    ids = [send_request(app, *people, message=f"n{n}")
           for n in range(transaction_list.PAGE_SIZE + 3)]
    auth.login(people[0])
    first = client.get("/transactions/").text
    assert ids[-1] in first and ids[2] not in first
    assert f"{transaction_list.PAGE_SIZE + 3} requests." in first
    older = re.search(r'href="(/transactions/\?page=2)" rel="next"', first).group(1)
    second = client.get(older).text
    assert all(i in second for i in ids[:3]) and ids[-1] not in second
    assert "← Newer" in second and "Page 2 of 2." in second


@pytest.mark.both_databases
def test_an_overdue_request_reads_as_expired_everywhere_before_the_sweep(app, client, auth,
                                                                         people):
    public_id = send_request(app, *people)
    make_overdue(app, public_id)
    auth.login(people[0])
    assert public_id not in client.get("/transactions/?status=pending").text
    assert public_id in client.get("/transactions/?status=expired").text
    assert 'data-field="status">expired<' in client.get(f"/transactions/{public_id}").text


@pytest.mark.both_databases
def test_still_pending_is_one_rule_on_a_row_and_in_a_query(app, people):
    """``pending_at``, ``overdue_at`` and ``status_at`` answer the same in Python and in SQL,
    on both sides of the expiry and for a finished request."""
    now = utcnow()
    with app.app_context():
        requestor, user = (db.session.get(User, p.id) for p in people)
        rows = [Transaction(requestor=requestor, user=user, message=f"{status} {offset}",
                            status=status, token_hash=f"{status}{offset}".ljust(64, "0"),
                            expires_at=now + timedelta(seconds=offset))
                for status in ("pending", "verified") for offset in (-1, 0, 1)]
        db.session.add_all(rows)
        db.session.commit()
        for rule in ("pending_at", "overdue_at", "status_at"):
            in_sql = dict(db.session.execute(
                select(Transaction.id, getattr(Transaction, rule)(now))).all())
            assert in_sql == {t.id: getattr(t, rule)(now) for t in rows}, rule
        assert [t.status_at(now) for t in rows] == ["expired", "expired", "pending"] + \
            ["verified"] * 3


def test_the_page_shows_each_delivery_attempt_with_pagerdutys_answer(app, client, auth, people,
                                                                     fake_pagerduty):
    from sendauth_dashboard.services.outbox.dispatcher import Dispatcher

    from .fakes.pagerduty import Answer

    app.config["PAGERDUTY_EVENTS_URL"] = fake_pagerduty.url
    public_id = send_request(app, *people)
    fake_pagerduty.answer_next(Answer.server_error())
    Dispatcher(app).run_until_idle()
    with app.app_context():
        db.session.execute(update(Delivery).values(next_attempt_at=utcnow()))
        db.session.commit()
    Dispatcher(app).run_until_idle()
    auth.login(people[0])
    page = client.get(f"/transactions/{public_id}").text
    assert "PagerDuty: attempt 1 failed (HTTP 500: Internal Server Error); trying again at" in page
    assert "PagerDuty accepted the notification (HTTP 202 Accepted, attempt 2)" in page


# -- cancelling ------------------------------------------------------------------------------

def test_the_requestor_cancels_a_pending_request_once(app, client, as_requestor, people):
    public_id = send_request(app, *people)
    as_requestor.post(f"/transactions/{public_id}/cancel")
    t = get(app, public_id)
    assert t.status == "cancelled" and t.completed_at is not None
    page = client.get(f"/transactions/{public_id}").text
    assert "The request is cancelled." in page
    assert "Hana Helpdesk cancelled the request" in page
    as_requestor.post(f"/transactions/{public_id}/cancel")
    assert "The request is already cancelled" in client.get(f"/transactions/{public_id}").text
    with app.app_context():
        assert db.session.scalar(select(func.count(Event.id)).where(
            Event.kind == "transaction.cancelled")) == 1


def test_an_admin_may_cancel_and_a_reviewer_may_not(app, auth, people, make_user):
    public_id = send_request(app, *people)
    auth.login(make_user("reviewer"))
    assert auth.post(f"/transactions/{public_id}/cancel").status_code == 403
    assert get(app, public_id).status == "pending"
    auth.logout()
    auth.login(make_user("admin"))
    auth.post(f"/transactions/{public_id}/cancel")
    assert get(app, public_id).status == "cancelled"


def test_a_finished_or_overdue_request_cannot_be_cancelled(app, client, as_requestor, people):
    public_id = send_request(app, *people)
    make_overdue(app, public_id)
    as_requestor.post(f"/transactions/{public_id}/cancel")
    assert get(app, public_id).status == "pending"
    assert "already expired" in client.get(f"/transactions/{public_id}").text


@pytest.mark.both_databases
# -- lifecycle ------------------------------------------------------------------------------

def test_the_sweep_expires_overdue_requests_with_one_event_each(app, people):
    overdue = send_request(app, *people)
    fresh = send_request(app, *people)
    make_overdue(app, overdue)
    with app.app_context():
        assert transactions.expire_due() == 1
        assert transactions.expire_due() == 0
        kinds = db.session.scalars(select(Event.kind).join(Transaction).where(
            Transaction.public_id == overdue)).all()
        d = db.session.scalar(select(Delivery).join(Transaction).where(
            Transaction.public_id == overdue))
        assert (d.status, d.link_ciphertext) == ("cancelled", None)
    t = get(app, overdue)
    assert (t.status, t.completed_at) == ("expired", t.expires_at)
    assert kinds == ["transaction.created", "transaction.expired"]
    assert get(app, fresh).status == "pending"


@pytest.mark.both_databases
def test_only_the_first_of_two_racing_answers_wins(app, people):
    public_id = send_request(app, *people)
    results, barrier = [], threading.Barrier(2)

    def answer(decision):
        with app.app_context():
            t = db.session.scalar(select(Transaction).where(Transaction.public_id == public_id))
            user = db.session.get(User, people[1].id)
            barrier.wait()
            outcome = transactions.answer(t, decision, user=user)
            db.session.commit()
            results.append(outcome.changed)

    threads = [threading.Thread(target=answer, args=(d,)) for d in ("verify", "deny")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert sorted(results) == [False, True]
    with app.app_context():
        assert db.session.scalar(select(func.count(Event.id)).where(
            Event.kind.in_(("transaction.verified", "transaction.denied")))) == 1


@pytest.mark.both_databases
def test_states_only_move_from_pending(app, people):
    public_id = send_request(app, *people)
    with app.app_context():
        t = db.session.scalar(select(Transaction).where(Transaction.public_id == public_id))
        user = db.session.get(User, people[1].id)
        assert transactions.answer(t, "verify", user=user).changed
        db.session.commit()
        assert transactions.cancel(t, actor=t.requestor) == transactions.Outcome(False, "verified")
        assert transactions.expire_due(now=utcnow() + timedelta(days=1)) == 0
        assert transactions.answer(t, "deny", user=user) == transactions.Outcome(False, "verified")


def test_only_the_transactions_user_may_answer(app, people, make_user):
    public_id = send_request(app, *people)
    with app.app_context():
        t = db.session.scalar(select(Transaction).where(Transaction.public_id == public_id))
        with pytest.raises(PermissionError):
            transactions.answer(t, "verify", user=t.requestor)


def test_a_second_client_sees_the_same_rules(app, people):
    """The answer page is reached by a different browser than the requestor's."""
    other = AuthActions(app.test_client())
    other.login(people[1])
    assert other.client.get("/transactions/").status_code == 403


@pytest.mark.both_databases
def test_a_user_can_be_sent_only_so_many_requests_per_window(app, as_requestor, make_user):
    app.config["SEND_LIMIT_PER_USER"] = [3, 600]
    for _ in range(3):
        assert as_requestor.post("/transactions/new", new_form()).status_code == 302
    before = counts(app)
    response = as_requestor.post("/transactions/new", new_form())
    assert response.status_code == 400
    assert "Uma User has been sent 3 requests in the last 10 minutes, the most allowed." in (
        response.text)
    assert re.search(r"The next one can go in (9|10) minutes \(at \d\d:\d\d:\d\d UTC\)\.",
                     response.text)
    assert counts(app) == before
    # Another user is not affected by Uma's limit.
    make_user("member", email="ola@example.com", notify_pagerduty=True)
    assert as_requestor.post("/transactions/new", new_form(user="ola@example.com")
                             ).status_code == 302


@pytest.mark.both_databases
def test_a_requestor_can_send_only_so_many_requests_per_window(app, people, make_user):
    app.config["SEND_LIMIT_PER_REQUESTOR"] = [2, 60]
    requestor = people[0]
    users = [make_user("member", notify_pagerduty=True) for _ in range(3)]
    send_request(app, requestor, users[0])
    send_request(app, requestor, users[1])
    with pytest.raises(transactions.TransactionError,
                       match=r"You have sent 2 requests in the last 60 seconds, the most "
                             r"allowed\. The next one can go in \d+ seconds"):
        send_request(app, requestor, users[2])
    send_request(app, make_user("requestor"), users[2])  # others still can


@pytest.mark.both_databases
def test_one_requestor_cannot_use_up_a_users_limit_for_the_whole_help_desk(app, people,
                                                                         make_user):
    app.config.update(SEND_LIMIT_PER_REQUESTOR_AND_USER=[2, 600], SEND_LIMIT_PER_USER=[3, 600])
    hana, uma = people
    send_request(app, hana, uma)
    send_request(app, hana, uma)
    with pytest.raises(transactions.TransactionError,
                       match=r"You have sent Uma User 2 requests in the last 10 minutes, the "
                             r"most one person may \(others on the help desk still can\)\."):
        send_request(app, hana, uma)
    otto = make_user("requestor")
    send_request(app, otto, uma)
    with pytest.raises(transactions.TransactionError, match="Uma User has been sent 3 requests"):
        send_request(app, make_user("requestor"), uma)


@pytest.mark.both_databases
def test_sends_released_together_never_pass_the_limits(app, people, make_user):
    """20 sends to one user from two requestors at once: the counts and the insert are one
    step, so each requestor gets at most their share and the user at most their ceiling."""
    app.config.update(SEND_LIMIT_PER_REQUESTOR_AND_USER=[5, 600], SEND_LIMIT_PER_USER=[8, 600])
    hana, uma = people
    otto = make_user("requestor")
    barrier, accepted, refused = threading.Barrier(20), [], []

    def send(requestor_id):
        with app.app_context():
            barrier.wait(timeout=30)  # before any connection is taken: the pool holds 15
            try:
                transactions.create(requestor=db.session.get(User, requestor_id),
                                    user_email=uma.email, message="Hi")
                db.session.commit()
                accepted.append(requestor_id)
            except transactions.TransactionError:
                db.session.rollback()
                refused.append(requestor_id)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=send, args=(r.id,)) for r in (hana, otto) * 10]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(accepted) + len(refused) == 20
    assert max(accepted.count(hana.id), accepted.count(otto.id)) <= 5
    assert len(accepted) == 8, f"{len(accepted)} accepted against a ceiling of 8"
    assert counts(app)[0] == 8


def test_transaction_pages_are_never_cached(app, client, as_requestor, people):
    public_id = send_request(app, *people)
    for path in (f"/transactions/{public_id}", "/transactions/", "/transactions/new"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert response.headers["Cache-Control"] == "no-store", path
