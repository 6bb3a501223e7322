"""Every password typed is counted before it is checked: attempts released together cannot all
slip past the limit, and a signed-in session cannot guess its own user's password."""
import threading
import time
import uuid

import pytest
import requests

from sendauth_dashboard.services.people import accounts
from tests.support.accounts import PASSWORD
from tests.support.config import REDIS_URL, need, redis_available
from tests.support.servers import CSRF, LiveServer
from tests.support.web import AuthActions, csrf_token_from

WRONG = "not the password at all"
BURST = 60


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def app_config(request):
    config = {"RATELIMIT_ENABLED": True}
    if request.param == "redis":
        need(redis_available(REDIS_URL), f"Redis not reachable at {REDIS_URL}")
        config.update(RATELIMIT_STORAGE_URI=REDIS_URL,
                      REDIS_CHANNEL_PREFIX=f"sendauth-test-{uuid.uuid4().hex[:12]}")
    return config


@pytest.fixture
def checked(monkeypatch):
    """The passwords checked against a user's hash, each taking scrypt's time."""
    seen, lock = [], threading.Lock()
    real = accounts.password_matches

    def counting(user, password):
        with lock:
            seen.append(password)
        time.sleep(0.05)  # stands in for scrypt: the tests' hash method is fast
        return real(user, password)

    monkeypatch.setattr(accounts, "password_matches", counting)
    return seen


@pytest.fixture
def served(app):
    server = LiveServer(app)
    yield server
    server.stop()


def burst(url, email, passwords):
    """POST /login once per password, from as many browsers, all released together."""
    sessions = [requests.Session() for _ in passwords]
    tokens = [CSRF.search(s.get(f"{url}/login", timeout=10).text).group(1) for s in sessions]
    barrier, statuses = threading.Barrier(len(passwords)), [None] * len(passwords)

    def post(n):
        barrier.wait(timeout=30)
        statuses[n] = sessions[n].post(f"{url}/login", allow_redirects=False, timeout=30, data={
            "email": email, "password": passwords[n], "csrf_token": tokens[n]}).status_code

    threads = [threading.Thread(target=post, args=(n,)) for n in range(len(passwords))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for session in sessions:
        session.close()
    return statuses


def test_sign_ins_released_together_check_no_more_passwords_than_the_limit(
        app, make_user, served, checked):
    user = make_user("member")
    statuses = burst(served.url, user.email, [WRONG] * BURST)
    assert len(checked) <= 10, f"{len(checked)} passwords checked against a limit of 10"
    assert statuses.count(429) >= BURST - 10
    assert statuses.count(200) == len(checked)
    assert burst(served.url, user.email, [PASSWORD]) == [429], "the right one is locked out too"
    assert checked.count(PASSWORD) == 0


def test_a_right_password_gives_its_attempt_back(app, make_user, served, checked):
    user = make_user("member")
    assert burst(served.url, user.email, [WRONG] * 9) == [200] * 9
    for _ in range(5):
        assert burst(served.url, user.email, [PASSWORD]) == [302]
    assert burst(served.url, user.email, [WRONG]) == [200], "the tenth wrong one is checked"
    assert burst(served.url, user.email, [WRONG]) == [429]


@pytest.fixture
def signed_in(app, make_user):
    user = make_user("member", passkey=False, notify_email=True)
    auth = AuthActions(app.test_client())
    auth.login(user)
    return user, auth


def change_password(auth, current):
    return auth.post("/profile/password", {"current_password": current,
                                           "new_password": "a brand new passphrase here",
                                           "confirm": "a brand new passphrase here"},
                     token_page="/profile/password")


def test_a_stolen_session_cannot_guess_the_password_on_the_password_page(signed_in, checked):
    user, auth = signed_in
    for _ in range(10):
        response = change_password(auth, WRONG)
        assert response.status_code == 400
        assert "That is not your current password" in response.text
    refused = change_password(auth, WRONG)
    assert refused.status_code == 429
    assert "Too many wrong passwords for your account" in refused.text
    assert change_password(auth, PASSWORD).status_code == 429, "the right one waits too"
    assert checked.count(WRONG) == 10
    assert AuthActions(auth.client.application.test_client()).login(user).status_code == 302, \
        "the password is unchanged"


@pytest.mark.usefixtures("every_channel_offered")
def test_the_password_proof_for_contact_changes_is_counted_per_user(signed_in, checked):
    user, auth = signed_in

    def change_contacts(password):
        token = csrf_token_from(auth.client.get("/profile/messaging").text)
        return auth.client.post("/profile/messaging", data={
            "csrf_token": token, "email": "y", "sms": "y", "phone": "+14155550100",
            "current_password": password})

    for _ in range(5):
        assert change_password(auth, WRONG).status_code == 400
    for _ in range(5):
        assert "That is not your current password" in change_contacts(WRONG).text
    assert change_contacts(WRONG).status_code == 429, "one count per user, whichever page"
    assert checked.count(WRONG) == 10
