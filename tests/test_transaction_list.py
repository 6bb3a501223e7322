"""The transaction list: find any request by a word, a person or a day; count; jump pages."""
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from sendauth_dashboard.extensions import db
from sendauth_dashboard.models import Transaction, User, utcnow
from sendauth_dashboard.services.requests import transaction_list
from tests.support.helpers import configure_pagerduty, send_request

pytestmark = pytest.mark.both_databases


@pytest.fixture
def people(app, make_user):
    configure_pagerduty(app)
    return {
        "hana": make_user("requestor", name="Hana Helpdesk", email="hana@example.com"),
        "rita": make_user("reviewer", name="Rita Reviewer", email="rita@example.com"),
        "uma": make_user("member", name="Uma User", email="uma@example.com",
                         notify_pagerduty=True),
        "olga": make_user("member", name="Olga Other", email="olga@corp.example",
                          notify_pagerduty=True),
    }


@pytest.fixture
def requests(app, people):
    hana, uma, olga = people["hana"], people["uma"], people["olga"]
    return {
        "reset": send_request(app, hana, uma, message="Please confirm the MFA reset",
                              context="Ticket #4521"),
        "laptop": send_request(app, hana, olga, message="New laptop: confirm it is you",
                               context="INC-77 100% done"),
        "vpn": send_request(app, hana, olga, message="VPN access for the weekend",
                            context="Ticket #9001 größer 東京"),
    }


def found(client, **query):
    response = client.get("/transactions/", query_string=query)
    assert response.status_code == 200, response.text[:500]
    return response.text


def shown(page, requests):
    return {name for name, public_id in requests.items() if public_id in page}


def test_a_search_finds_part_of_a_name_an_email_a_message_word_or_a_ticket(
        client, auth, people, requests):
    auth.login(people["rita"])
    assert shown(found(client, q="uma"), requests) == {"reset"}
    assert shown(found(client, q="UMA"), requests) == {"reset"}
    assert shown(found(client, q="corp.example"), requests) == {"laptop", "vpn"}
    assert shown(found(client, q="laptop"), requests) == {"laptop"}
    assert shown(found(client, q="4521"), requests) == {"reset"}
    assert shown(found(client, q="#9001"), requests) == {"vpn"}
    assert shown(found(client, q="hana"), requests) == {"reset", "laptop", "vpn"}
    # every word must match somewhere, in any field
    assert shown(found(client, q="olga weekend"), requests) == {"vpn"}
    assert shown(found(client, q='"the weekend"'), requests) == {"vpn"}
    assert shown(found(client, q="uma weekend"), requests) == set()


def test_what_a_person_types_is_matched_as_text(client, auth, people, requests):
    auth.login(people["rita"])
    assert shown(found(client, q="%"), requests) == {"laptop"}
    assert shown(found(client, q="100%"), requests) == {"laptop"}
    assert shown(found(client, q="_"), requests) == set()
    assert shown(found(client, q="\\"), requests) == set()
    assert shown(found(client, q="'; drop table users; --"), requests) == set()
    assert shown(found(client, q="東京"), requests) == {"vpn"}
    assert shown(found(client, q="größer"), requests) == {"vpn"}
    page = found(client, q="x" * 100_000)
    assert shown(page, requests) == set() and "Nothing matches" in page
    assert shown(found(client, q='"'), requests) == {"reset", "laptop", "vpn"}
    assert client.get("/transactions/", query_string={"q": "\x00"}).status_code == 400


def test_a_requestor_searches_only_the_requests_they_sent(app, client, auth, people, requests,
                                                         make_user):
    other = make_user("requestor", name="Uma's Colleague", email="colleague@example.com")
    theirs = send_request(app, other, people["uma"], message="Another laptop")
    auth.login(other)
    page = found(client, q="laptop")
    assert theirs in page and shown(page, requests) == set()
    assert "1 request matches." in page


def test_the_list_narrows_to_days_sent_in_utc(app, client, auth, people, requests):
    now = utcnow()
    with app.app_context():
        db.session.execute(update(Transaction).where(Transaction.public_id == requests["reset"])
                           .values(created_at=now - timedelta(days=8)))
        db.session.commit()
    auth.login(people["rita"])
    last_week = (now - timedelta(days=8)).date().isoformat()
    assert shown(found(client, since=last_week, until=last_week), requests) == {"reset"}
    today = now.date().isoformat()
    assert shown(found(client, since=today), requests) == {"laptop", "vpn"}
    response = client.get("/transactions/", query_string={"since": "last tuesday"})
    assert response.status_code == 400
    assert "Enter the day as YYYY-MM-DD" in response.text
    assert shown(found(client, until="9999-12-31", since="0001-01-01"), requests) == \
        {"reset", "laptop", "vpn"}


def test_the_count_and_numbered_pages_jump_through_what_matches(app, client, auth, people):
    ids = [send_request(app, people["hana"], people["uma"], message=f"batch {n}")
           for n in range(7)]
    auth.login(people["rita"])
    assert "7 requests match." in found(client, q="batch")
    with app.app_context():
        viewer = db.session.get(User, people["rita"].id)
        filters = transaction_list.Filters(q="batch")
        page = transaction_list.listing(viewer, filters, page=3, page_size=3)
        assert (page.total, page.last, page.number) == (7, 3, 3)
        assert [t.public_id for t in page.rows] == [ids[0]]
        assert page.numbers() == [1, 2, 3] and not page.has_next
        assert transaction_list.listing(viewer, filters, page=99, page_size=3).number == 3


def test_page_numbers_show_the_ends_and_the_neighbourhood():
    page = transaction_list.Page([], 10, 50, 50 * 20, False)
    assert page.numbers() == [1, None, 8, 9, 10, 11, 12, None, 20]
    assert transaction_list.Page([], 1, 50, 0, False).numbers() == [1]


def test_odd_page_numbers_are_the_first_page(client, auth, people, requests):
    auth.login(people["rita"])
    for value in ("0", "-3", "²", "1e9", "9" * 5000, "999999999", ""):
        assert shown(found(client, page=value), requests) == {"reset", "laptop", "vpn"}


def test_a_pending_row_shows_its_time_left(client, auth, people, requests):
    auth.login(people["rita"])
    page = found(client)
    assert page.count('class="countdown"') == 3
    assert "min" in page and "s left" in page


def test_search_terms_are_words_or_quoted_phrases():
    assert transaction_list.search_terms(' Uma  "MFA reset" uma ') == ["uma", "mfa reset"]
    assert len(transaction_list.search_terms("w " * 100)) == 1
    assert len(transaction_list.search_terms(" ".join(str(n) for n in range(50)))) == \
        transaction_list.SEARCH_MAX_WORDS


def test_a_time_is_utc_in_the_page_for_the_browser_to_show_in_its_zone(client, auth, people,
                                                                        requests, app):
    auth.login(people["rita"])
    with app.app_context():
        created = db.session.scalar(select(Transaction.created_at)
                                    .where(Transaction.public_id == requests["reset"]))
    stamp = created.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert f'<time datetime="{stamp}" data-local>{created:%Y-%m-%d %H:%M:%S} UTC</time>' in \
        found(client)


def test_a_public_id_starts_with_a_letter_or_a_digit():
    """So a CSV cell never starts with "-" (a formula to a spreadsheet, quoted by the export)."""
    from sendauth_dashboard.models import new_public_id

    ids = [new_public_id() for _ in range(2000)]
    assert all(i[0].isalnum() and len(i) == 22 for i in ids)
    assert len(set(ids)) == len(ids)
