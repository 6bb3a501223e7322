"""Insights: the figures, read from the per-day tallies, match what was counted by hand and
a full count of the rows, in the reader's time zone."""
from datetime import date, datetime, timedelta, timezone

import pytest

from sendauth_dashboard.extensions import db
from sendauth_dashboard.models import Delivery, Transaction, User
from sendauth_dashboard.services.reports import insights, tallies

pytestmark = pytest.mark.both_databases

UTC = timezone.utc
PLUS_TWO = timezone(timedelta(hours=2))
DAY = date(2026, 3, 31)
LATER = datetime(2026, 4, 10, tzinfo=UTC)


def at(hour, minute, second=0, tz=UTC, day=DAY):
    return datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=tz)


def add_request(requestor, user, created, status, answered_after=None, deliveries=()):
    """A transaction as the product leaves it; deliveries are (channel, status, seconds)."""
    transaction = Transaction(
        requestor_id=requestor.id, user_id=user.id, message="Please confirm", status=status,
        token_hash=f"{id(object()):x}{created.timestamp()}{status}"[:64],
        created_at=created, expires_at=created + timedelta(minutes=5),
        completed_at=None if answered_after is None else created + timedelta(
            seconds=answered_after),
    )
    db.session.add(transaction)
    db.session.flush()
    for channel, delivery_status, seconds in deliveries:
        db.session.add(Delivery(
            transaction_id=transaction.id, channel=channel, status=delivery_status,
            created_at=created, next_attempt_at=created,
            completed_at=None if seconds is None else created + timedelta(seconds=seconds)))
    return transaction


@pytest.fixture
def hand_counted(app, make_user):
    """Two requestors, two users, and requests around 31 March 2026 (UTC)."""
    r1 = make_user("requestor", name="Rhea One")
    r2 = make_user("requestor", name="Rob Two")
    u1 = make_user("member", name="Una One")
    u2 = make_user("member", name="Ugo Two")
    with app.app_context():
        # A: verified in 20 s; sent by PagerDuty in 2 s.
        add_request(r1, u1, at(10, 0), "verified", 20, [("pagerduty", "sent", 2)])
        # B: denied in 40 s; PagerDuty 4 s.
        add_request(r1, u2, at(10, 5), "denied", 40, [("pagerduty", "sent", 4)])
        # C: sent at 23:59:30, verified in 60 s (the next day): counts on the day it was sent.
        add_request(r1, u1, at(23, 59, 30), "verified", 60, [("pagerduty", "sent", 3)])
        # D: 01:30 on 1 April at UTC+2 is 23:30 on 31 March UTC: verified in 100 s.
        add_request(r1, u2, at(1, 30, tz=PLUS_TWO, day=date(2026, 4, 1)), "verified", 100,
                    [("email", "failed", 1), ("sms", "sent", 10)])
        # F: never answered and past its expiry: expired, though the row still says pending.
        add_request(r2, u1, at(12, 0), "pending")
        # G: cancelled.
        add_request(r2, u2, at(13, 0), "cancelled", 30, [("email", "cancelled", 30)])
        # E: 00:30 on 31 March at UTC+2 is 22:30 on 30 March UTC: outside the day.
        add_request(r2, u2, at(0, 30, tz=PLUS_TWO), "verified", 5, [("pagerduty", "sent", 9)])
        db.session.commit()


def one_day(app, day=DAY):
    with app.app_context():
        return insights.gather(insights.DayRange(day, day), now=LATER)


def test_one_day_counts_what_was_sent_that_utc_day(app, hand_counted):
    figures = one_day(app)
    assert figures.outcomes == {DAY: {"pending": 0, "verified": 3, "denied": 1,
                                      "cancelled": 1, "expired": 1}}
    assert figures.total == 6
    # 20, 40, 60, 100 s: the median halfway between 40 and 60; the 90th at 2.7 of 3 steps.
    assert figures.answer_daily == {DAY: (50.0, 88.0, 4)}
    assert figures.answer_overall == (50.0, 88.0, 4)
    assert dict(figures.answer_buckets) == {"under 10 s": 0, "10–30 s": 1, "30 s–1 min": 1,
                                            "1–2 min": 2, "2–5 min": 0, "over 5 min": 0}
    assert figures.delivery_time == {"pagerduty": (3.0, 3.8, 3), "sms": (10.0, 10.0, 1)}
    assert figures.delivery_outcomes["email"] == {"sent": 0, "failed": 1, "cancelled": 1,
                                                  "queued": 0, "sending": 0}
    assert figures.requestors == [("Rhea One", "requestor1@example.com", 4),
                                  ("Rob Two", "requestor2@example.com", 2)]
    assert [(name, n) for name, _, n in figures.users] == [("Ugo Two", 3), ("Una One", 3)]


def test_the_day_before_holds_what_was_sent_before_utc_midnight(app, hand_counted):
    figures = one_day(app, date(2026, 3, 30))
    assert figures.outcomes[date(2026, 3, 30)]["verified"] == 1
    assert figures.answer_overall == (5.0, 5.0, 1)
    assert figures.delivery_time == {"pagerduty": (9.0, 9.0, 1)}


def test_an_empty_range_has_a_row_of_zeros_per_day_and_nothing_else(app, hand_counted):
    with app.app_context():
        figures = insights.gather(insights.DayRange(date(2026, 1, 1), date(2026, 1, 7)), LATER)
    assert list(figures.outcomes) == [date(2026, 1, d) for d in range(1, 8)]
    assert all(sum(states.values()) == 0 for states in figures.outcomes.values())
    assert figures.answer_daily == {} and figures.answer_overall is None
    assert all(count == 0 for _, count in figures.answer_buckets)
    assert figures.delivery_time == {} and figures.delivery_outcomes == {}
    assert figures.requestors == [] and figures.users == []


def test_a_week_spreads_requests_over_their_days(app, hand_counted):
    with app.app_context():
        figures = insights.gather(insights.DayRange(date(2026, 3, 28), date(2026, 4, 3)), LATER)
    assert {d: sum(s.values()) for d, s in figures.outcomes.items() if sum(s.values())} == {
        date(2026, 3, 30): 1, DAY: 6}
    assert figures.answer_overall == (40.0, 84.0, 5)  # 5, 20, 40, 60, 100


@pytest.mark.parametrize("args, first, last", [
    ({}, date(2026, 3, 2), DAY),
    ({"days": "7"}, date(2026, 3, 25), DAY),
    ({"days": "90"}, date(2026, 1, 1), DAY),
    ({"since": "2026-03-31", "until": "2026-03-31"}, DAY, DAY),
    ({"since": "2026-03-01"}, date(2026, 3, 1), DAY),
])
def test_ranges_are_whole_days(args, first, last):
    day_range = insights.parse_range(**args, today=DAY)
    assert (day_range.first, day_range.last) == (first, last)
    assert day_range.end - day_range.start == timedelta(days=(last - first).days + 1)


@pytest.mark.parametrize("args, message", [
    ({"days": "8"}, "Choose the last 7, 30, 90 days"),
    ({"days": "x"}, "Choose the last 7, 30, 90 days"),
    ({"since": "31/03/2026"}, "is not a date: write it as YYYY-MM-DD"),
    ({"since": "2026-04-01", "until": "2026-03-31"}, "swap them"),
    ({"since": "2020-01-01"}, "Choose at most 366 days"),
])
def test_a_range_that_cannot_be_shown_says_what_to_ask_for(args, message):
    with pytest.raises(insights.RangeError, match=message):
        insights.parse_range(**args, today=DAY)


def test_reviewer_reads_charts_tables_and_csv(app, client, auth, make_user, hand_counted):
    auth.login(make_user("reviewer"))
    page = client.get("/insights?since=2026-03-31&until=2026-03-31")
    assert page.status_code == 200
    assert 'data-chart="outcomes" data-chart-spec="{&#34;datasets&#34;' in page.text
    assert "<th scope=\"row\">2026-03-31</th><td>0</td><td>3</td><td>1</td><td>1</td>" \
           "<td>1</td><td>6</td>" in page.text
    assert "vendor/chartjs/chart.umd.min.js" in page.text
    download = client.get("/insights?since=2026-03-31&until=2026-03-31&format=csv"
                          "&table=answer-time")
    assert download.headers["Content-Type"].startswith("text/csv")
    assert download.get_data(as_text=True).splitlines() == [
        "Day,median (s),90th percentile (s),answered", "2026-03-31,50.0,88.0,4"]
    assert client.get("/insights?format=csv&table=nope").status_code == 404
    wrong = client.get("/insights?since=2026-13-01")
    assert wrong.status_code == 400 and "is not a date" in wrong.text


def test_days_are_the_readers_and_say_whose(app, client, auth, make_user, hand_counted):
    """D was sent at 23:30 UTC on 31 March: 1 April in Kolkata (UTC+5:30), where A, B (10:00
    and 10:05 UTC) are still on 31 March."""
    auth.login(make_user("reviewer"))
    kolkata = client.get("/insights?since=2026-04-01&until=2026-04-01&tz=Asia/Kolkata")
    assert "Days in <strong data-zone-name>Asia/Kolkata</strong>" in kolkata.text
    assert '<dd class="stat-value" data-total>2</dd>' in kolkata.text  # C (05:29:30) and D
    client.set_cookie("tz", "Asia/Kolkata")
    assert '<dd class="stat-value" data-total>2</dd>' in client.get(
        "/insights?since=2026-04-01&until=2026-04-01").text
    unknown = client.get("/insights?since=2026-03-31&until=2026-03-31&tz=Mars/Olympus")
    assert "Days in <strong data-zone-name>Asia/Kolkata</strong>" in unknown.text
    client.delete_cookie("tz")
    utc = client.get("/insights?since=2026-03-31&until=2026-03-31&tz=Nowhere")
    assert "Days in <strong data-zone-name>UTC</strong>" in utc.text
    assert '<dd class="stat-value" data-total>6</dd>' in utc.text
    assert '<dd class="stat-value" data-median-answer>50 s</dd>' in utc.text


def test_an_empty_range_says_so_instead_of_drawing_empty_charts(app, client, auth, make_user,
                                                                  hand_counted):
    auth.login(make_user("reviewer"))
    page = client.get("/insights?since=2026-01-01&until=2026-01-07&tz=UTC")
    assert "No requests in this range" in page.text
    assert "data-chart=" not in page.text and "chart.umd.min.js" not in page.text
    assert "No requests in this range" not in client.get(
        "/insights?since=2026-03-31&until=2026-03-31&tz=UTC").text


# -- the tallies agree with a full count of the rows -----------------------------------------

NEW_YORK = "America/New_York"
KOLKATA = "Asia/Kolkata"


def local(zone, *parts):
    return datetime(*parts, tzinfo=insights.zone_named(zone)).astimezone(UTC)


def tally_rows():
    return sorted(tuple(row) for row in db.session.execute(db.select(
        *[getattr(tallies.InsightTally, c) for c in (*tallies.KEY_COLUMNS, "count")])).all())


def test_what_the_services_tally_as_requests_end_is_what_the_rows_count(app, make_user):
    """Requests sent either side of midnight in UTC, Kolkata and New York, answered, cancelled
    and expired through the services, their notifications cancelled, sent and failed: the
    tallies written on the way equal the tallies counted from the rows afterwards."""
    from sendauth_dashboard.channels.http import SendResult
    from sendauth_dashboard.services.outbox import deliveries
    from sendauth_dashboard.services.requests import transactions
    from tests.support.helpers import configure_pagerduty

    configure_pagerduty(app)
    requestor = make_user("requestor")
    user = make_user("member", notify_pagerduty=True)
    with app.app_context():
        tallies.prepare({0, 330, -300})
        sender, answerer = db.session.get(User, requestor.id), db.session.get(User, user.id)
        sent_at = [datetime(2026, 3, 30, 23, 59, 59, 999999, tzinfo=UTC),
                   datetime(2026, 3, 31, 0, 0, tzinfo=UTC),
                   local(KOLKATA, 2026, 3, 31, 23, 59, 59), local(KOLKATA, 2026, 4, 1),
                   local(NEW_YORK, 2026, 3, 31, 23, 59, 50), local(NEW_YORK, 2026, 4, 1)]
        sent = [transactions.create(requestor=sender, user_email=user.email, message=f"m{n}",
                                    now=at) for n, at in enumerate(sent_at)]
        db.session.commit()
        outbox = deliveries.claim("test", 2)
        deliveries.record_result(outbox[0], "test", SendResult("accepted", 202), app.config)
        deliveries.record_result(outbox[1], "test", SendResult("permanent", 400, "No"),
                                 app.config)
        endings = [("verify", 20.4), ("deny", 20.6), ("verify", 61), ("cancel", 5),
                   ("verify", 299.5), ("expire", 300)]
        for transaction, (how, after) in zip(sent, endings, strict=True):
            later = transaction.created_at + timedelta(seconds=after)
            if how == "cancel":
                transactions.cancel(transaction, actor=sender, now=later)
            elif how == "expire":
                transactions.expire_due(now=later)
            else:
                transactions.answer(transaction, how, user=answerer, now=later)
            db.session.commit()
        kept = tally_rows()
        tallies.refill()
        assert tally_rows() == kept
    assert {row[0] for row in kept} == {0, 330, -300}
    assert ("delivery", "pagerduty", "failed") in {row[2:5] for row in kept}
    # Sent a microsecond before midnight, answered 20.4 s later: its day, 21 s on the clock.
    assert (0, date(2026, 3, 30), "answer", "", "", 21, 1) in kept
    assert (0, date(2026, 3, 31), "answer", "", "", 20, 1) in kept


def full_count(day_range, now):
    """The figures counted from every row in Python, as a reader in ``day_range.zone`` reads
    them: the oracle the tallies must match."""
    from statistics import quantiles

    outcomes = {day: dict.fromkeys(insights.TRANSACTION_STATES, 0) for day in day_range.days}
    answers, people = {}, {"requestor": {}, "user": {}}
    for t in db.session.scalars(db.select(Transaction)):
        day = day_range.day_of(t.created_at)
        if day not in outcomes:
            continue
        outcomes[day][t.status_at(now)] += 1
        if t.status in ("verified", "denied"):
            answers.setdefault(day, []).append(tallies.whole_seconds(t.created_at,
                                                                     t.completed_at))
        for role, person in (("requestor", t.requestor_id), ("user", t.user_id)):
            people[role][person] = people[role].get(person, 0) + 1

    def summary(values):
        if len(values) == 1:
            return (values[0], values[0], 1)
        cuts = quantiles(values, n=10, method="inclusive")  # percentile_cont's
        return (cuts[4], cuts[8], len(values))

    every_answer = [s for values in answers.values() for s in values]
    return {"outcomes": outcomes,
            "answer_daily": {day: summary(values) for day, values in answers.items()},
            "answer_overall": summary(every_answer) if every_answer else None,
            "people": people}


def rounded(summary):
    """(median, 90th percentile, how many) to a millionth: both sides interpolate in floats."""
    return None if summary is None else tuple(round(value, 6) for value in summary)


@pytest.mark.parametrize("zone, first, last", [
    ("UTC", date(2026, 3, 6), date(2026, 3, 10)),
    (KOLKATA, date(2026, 3, 6), date(2026, 3, 10)),
    # New York's clocks go forward at 02:00 on 8 March 2026: a day of 23 hours.
    (NEW_YORK, date(2026, 3, 6), date(2026, 3, 10)),
    # ... and back at 02:00 on 1 November 2026: a day of 25 hours.
    (NEW_YORK, date(2026, 10, 31), date(2026, 11, 2)),
])
def test_figures_from_the_tallies_are_those_of_a_full_count(app, make_user, zone, first, last):
    """Requests sent on the stroke of midnight in each zone, a moment before, and in the hours
    the clocks skip or repeat, answered after the midnight that follows: what a reader in the
    zone sees, read from the tallies, is what counting every row gives."""
    people = [make_user("requestor"), make_user("requestor"), make_user("member"),
              make_user("member")]
    moments = []
    for day in (date(2026, 3, 7), date(2026, 3, 8), date(2026, 3, 9), date(2026, 10, 31),
                date(2026, 11, 1), date(2026, 11, 2)):
        for name in ("UTC", KOLKATA, NEW_YORK):
            midnight = local(name, day.year, day.month, day.day)
            moments += [midnight, midnight - timedelta(microseconds=1),
                        midnight - timedelta(seconds=30)]
    moments += [local(NEW_YORK, 2026, 3, 8, 1, 59, 59), datetime(2026, 3, 8, 7, 0, tzinfo=UTC),
                datetime(2026, 11, 1, 5, 30, tzinfo=UTC), datetime(2026, 11, 1, 6, 30,
                                                                   tzinfo=UTC)]
    ways = ["verified", "denied", "verified", "cancelled", "expired", "pending"]
    with app.app_context():
        for n, at in enumerate(sorted(moments)):
            status = ways[n % len(ways)]
            answered_after = {"verified": 31 + n * 7 % 240, "denied": 45.5,
                              "cancelled": 12, "expired": 300}.get(status)
            add_request(people[n % 2], people[2 + n % 2], at, status, answered_after,
                        [("email", "sent", 1 + n % 5)])
        db.session.commit()
        day_range = insights.DayRange(first, last, zone=insights.zone_named(zone))
        figures = insights.gather(day_range, LATER)
        expected = full_count(day_range, LATER)
    assert figures.outcomes == expected["outcomes"]
    assert figures.total > 0
    assert {day: rounded(s) for day, s in figures.answer_daily.items()} == {
        day: rounded(s) for day, s in expected["answer_daily"].items()}
    assert rounded(figures.answer_overall) == rounded(expected["answer_overall"])
    sent_by = {p.email: expected["people"]["requestor"].get(p.id, 0) for p in people[:2]}
    assert {email: n for _, email, n in figures.requestors} == {
        email: n for email, n in sent_by.items() if n}
