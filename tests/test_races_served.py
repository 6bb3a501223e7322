"""The races of issue 25 against the production shape: gunicorn with a gevent worker on
PostgreSQL, requests released together over real HTTP."""
import threading

import pytest
import requests

from sendauth_dashboard import create_app
from sendauth_dashboard.extensions import db
from tests.support import servers
from tests.support.accounts import create_user
from tests.support.config import base_test_config
from tests.support.helpers import configure_pagerduty

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


@pytest.fixture
def served(served_database, tmp_path, fake_pagerduty):
    app = create_app(base_test_config(tmp_path, SQLALCHEMY_DATABASE_URI=served_database,
                                      SECRET_KEY=servers.SECRET_KEY))
    for email in ("hana@example.com", "otto@example.com"):
        create_user(app, "requestor", email)
    create_user(app, "member", "uma@example.com", notify_pagerduty=True)
    configure_pagerduty(app)
    env = servers.environment(
        tmp_path, SQLALCHEMY_DATABASE_URI=served_database, PAGERDUTY_EVENTS_URL=fake_pagerduty.url,
        BASE_URL="http://sendauth.test", RATELIMIT_ENABLED="true",
        SEND_LIMIT_PER_REQUESTOR_AND_USER="[5, 600]", SEND_LIMIT_PER_USER="[8, 600]")
    server = servers.gunicorn(env, tmp_path)
    yield app, server
    assert server.stop() == 0, server.log()[-2000:]
    with app.app_context():
        db.engine.dispose()


def released_together(posts):
    """Run each ``post()`` in a thread of its own, all released at once; their statuses."""
    barrier, statuses = threading.Barrier(len(posts)), [None] * len(posts)

    def run(n):
        barrier.wait(timeout=30)
        statuses[n] = posts[n]()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(len(posts))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return statuses


def a_sign_in(url, password):
    session = requests.Session()
    token = servers.CSRF.search(session.get(f"{url}/login", timeout=10).text).group(1)
    return lambda: session.post(f"{url}/login", allow_redirects=False, timeout=30, data={
        "email": "uma@example.com", "password": password, "csrf_token": token}).status_code


def test_sign_ins_released_together_under_gevent_check_at_most_the_limit(served):
    _, server = served
    statuses = released_together([a_sign_in(server.url, "not the password at all")
                                  for _ in range(60)])
    assert statuses.count(200) <= 10, f"{statuses.count(200)} passwords checked, limit 10"
    assert statuses.count(429) >= 50
    assert released_together([a_sign_in(server.url, servers.PASSWORD)]) == [429]


def a_send(browser, token):
    session = requests.Session()
    session.cookies.update(browser.session.cookies)
    return lambda: session.post(f"{browser.url}/transactions/new", allow_redirects=False,
                                timeout=30, data={"csrf_token": token, "user": "uma@example.com",
                                                  "message": "Confirm it is you"}).status_code


def test_sends_released_together_under_gevent_never_pass_the_limits(served):
    app, server = served
    posts = []
    for email in ("hana@example.com", "otto@example.com"):
        browser = servers.Browser(server.url)
        browser.login(email)
        token = browser.token("/transactions/new")
        posts += [a_send(browser, token) for _ in range(10)]
    statuses = released_together(posts)
    assert sorted(set(statuses)) == [302, 400], statuses
    assert statuses[:10].count(302) <= 5 and statuses[10:].count(302) <= 5
    assert statuses.count(302) == 8, f"{statuses.count(302)} accepted against a ceiling of 8"
    with app.app_context():
        count = db.session.execute(db.text("SELECT count(*) FROM transactions")).scalar()
    assert count == 8
