import pytest

from sendauth_dashboard.extensions import db
from sendauth_dashboard.models import User
from tests.support.accounts import PASSWORD
from tests.support.web import csrf_token_from, passkey_sign_in_form


def test_sign_in_and_out(client, auth, make_user):
    user = make_user("requestor")
    response = auth.login(user)
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    assert user.name in client.get("/").text

    response = auth.logout()
    assert response.status_code == 302
    assert client.get("/").status_code == 302


def test_email_is_case_insensitive_at_sign_in(client, auth, make_user):
    make_user("member", email="mixed@example.com")
    assert auth.login("  MiXeD@Example.COM ").status_code == 302


@pytest.mark.parametrize("email, password", [
    ("nobody@example.com", PASSWORD),
    ("member1@example.com", "the wrong password"),
    ("not an email", PASSWORD),
])
def test_wrong_email_and_wrong_password_get_the_same_message(auth, make_user, email, password):
    make_user("member")
    response = auth.login(email, password)
    assert response.status_code == 200
    assert "Email or password is incorrect." in response.text


@pytest.mark.parametrize("email", ["nobody@example.com", "member1@example.com", "not an email"])
def test_an_unknown_email_costs_the_same_hashing_as_a_wrong_password(app, auth, make_user,
                                                                      monkeypatch, email):
    """Else the time a refusal takes tells which emails have an account."""
    from sendauth_dashboard.services.people import accounts

    make_user("member")
    methods = []
    real_check = accounts.check_password_hash

    def check_and_note_method(hashed, password):
        methods.append(hashed.split("$")[0])
        return real_check(hashed, password)

    monkeypatch.setattr(accounts, "check_password_hash", check_and_note_method)
    auth.login(email, "the wrong password")
    assert methods == [app.config["PASSWORD_HASH_METHOD"]]


def test_a_deactivated_user_cannot_sign_in_and_hears_what_a_wrong_password_hears(auth,
                                                                                 make_user):
    user = make_user("member", active=False)
    right = auth.login(user)
    assert right.status_code == 200
    assert "Email or password is incorrect." in right.text
    wrong = auth.login(user.email, "not the password at all")
    unknown = auth.login("nobody@example.com", "not the password at all")
    said = ("Email or password is incorrect. If you are sure of both, your account may be "
            "deactivated: ask an admin.")
    for response in (right, wrong, unknown):
        assert response.text.count(said) == 1
    assert right.text.replace(user.email, "").count("deactivated") == wrong.text.replace(
        user.email, "").count("deactivated")


def test_a_deactivated_user_is_signed_out_at_the_next_request(app, client, auth, make_user):
    user = make_user("requestor")
    auth.login(user)
    assert client.get("/").status_code == 200
    with app.app_context():
        db.session.get(User, user.id).active = False
        db.session.commit()
    response = client.get("/")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")


def test_anonymous_visitors_are_sent_to_sign_in_and_back(client, auth, make_user, admin):
    response = client.get("/settings/users")
    assert response.status_code == 302
    assert response.headers["Location"] == "/login?next=%2Fsettings%2Fusers"
    response = auth.login(admin, next_url="/settings/users")
    assert response.headers["Location"] == "/settings/users"


@pytest.mark.parametrize("target", [
    "https://evil.example/steal",
    "//evil.example/steal",
    "/\\evil.example",
    "\\\\evil.example",
    "javascript:alert(1)",
    "http:/evil.example",
    "settings/users",
    "/%0d%0aLocation:%20https://evil.example",
])
def test_next_never_leaves_the_site(auth, make_user, target):
    response = auth.login(make_user("member"), next_url=target)
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location in ("/", target) and location.startswith("/")
    assert not response.headers["Location"].startswith("//")


def test_sign_in_without_a_csrf_token_is_refused(client, make_user):
    user = make_user("member")
    response = client.post("/login", data={"email": user.email, "password": PASSWORD})
    assert response.status_code == 400
    assert "security token" in response.text


def test_a_csrf_token_from_another_session_is_refused(app, client, make_user):
    user = make_user("member")
    other = app.test_client()
    foreign_token = csrf_token_from(other.get("/login").text)
    client.get("/login")
    response = client.post("/login", data={
        "email": user.email, "password": PASSWORD, "csrf_token": foreign_token,
    })
    assert response.status_code == 400


def test_sign_out_is_a_post_with_a_csrf_token(client, auth, make_user):
    auth.login(make_user("member"))
    assert client.get("/logout").status_code == 405
    assert client.post("/logout").status_code == 400
    assert client.get("/").status_code == 200


def test_the_session_cookie_is_httponly_and_samesite_lax(client, auth, make_user):
    response = auth.login(make_user("member"))
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie


def _age_session(app, user, **ago):
    from datetime import timedelta

    from sendauth_dashboard.models import SignIn, utcnow

    with app.app_context():
        db.session.query(SignIn).filter(SignIn.user_id == user.id).update(
            {column: utcnow() - timedelta(**delta) for column, delta in ago.items()})
        db.session.commit()


@pytest.mark.both_databases
@pytest.mark.parametrize("ago, signed_in", [
    ({"last_seen_at": {"hours": 13}}, False),  # idle past 12 hours
    ({"last_seen_at": {"hours": 11}}, True),
    ({"created_at": {"days": 31}}, False),  # past 30 days, however busy
    ({"created_at": {"days": 365}}, False),
    ({"created_at": {"days": 29}}, True),
])
def test_a_session_ends_on_the_server_when_idle_or_too_old(app, client, auth, make_user, ago,
                                                            signed_in):
    user = make_user("member")
    auth.login(user)
    _age_session(app, user, **ago)
    response = client.get("/")
    assert (response.status_code == 200) is signed_in
    if not signed_in:
        assert response.headers["Location"].startswith("/login")


def test_a_sessions_use_is_noted_so_a_busy_one_stays(app, client, auth, make_user):
    from sendauth_dashboard.models import SignIn, utcnow

    user = make_user("member")
    auth.login(user)
    _age_session(app, user, last_seen_at={"hours": 11})
    assert client.get("/").status_code == 200
    with app.app_context():
        (seen,) = db.session.scalars(db.select(SignIn.last_seen_at)).all()
    assert (utcnow() - seen).total_seconds() < 60, "used now: 12 more hours"


def test_signing_in_starts_a_fresh_csrf_secret(client, auth, make_user):
    user = make_user("member")
    before = csrf_token_from(client.get("/login").text)
    auth.login(user)
    response = client.post("/logout", data={"csrf_token": before})
    assert response.status_code == 400, "a token from before signing in no longer works"
    assert client.get("/").status_code == 200
    assert auth.logout().status_code == 302


# -- signing in with a passkey -------------------------------------------------------------------

def test_a_passkey_signs_in_with_no_password_like_any_sign_in(app, client, make_user):
    from sqlalchemy import select

    from sendauth_dashboard.models import Event, SignIn

    user = make_user("requestor", name="Pia Passkey")
    response = client.post("/login/passkey?next=/transactions/",
                           data=passkey_sign_in_form(client, user.authenticator))
    assert response.status_code == 302
    assert response.headers["Location"] == "/transactions/"
    assert "Pia Passkey" in client.get("/").text
    with app.app_context():
        row = db.session.get(User, user.id)
        assert row.last_sign_in_at is not None
        assert db.session.scalar(select(SignIn.user_id).where(SignIn.ended_at.is_(None))) == \
            user.id
        event = db.session.scalar(select(Event).where(Event.kind == "user.signed_in"))
        assert (event.actor_id, event.data) == (user.id, {"method": "a passkey"})


def test_a_passkey_sign_in_that_is_replayed_unknown_or_made_for_something_else_is_refused(
        app, client, make_user):
    import json

    from tests.support.authenticator import SoftAuthenticator

    user = make_user("member")
    form = passkey_sign_in_form(client, user.authenticator)
    assert client.post("/login/passkey", data=form).status_code == 302
    client.post("/logout", data={"csrf_token": csrf_token_from(client.get("/").text)})
    form["csrf_token"] = csrf_token_from(client.get("/login").text)  # signing out renewed it
    replayed = client.post("/login/passkey", data=form)
    assert replayed.status_code == 400 and "already used" in replayed.text
    stranger = SoftAuthenticator(app.config["BASE_URL"])
    unknown = client.post("/login/passkey", data=passkey_sign_in_form(client, stranger))
    assert unknown.status_code == 400 and "not registered here" in unknown.text
    # An assertion made for a challenge of another purpose (here: a made-up one) is no sign-in.
    made_up = {**form, "credential": json.dumps(user.authenticator.get(
        {"challenge": "bm90LWFza2VkLWZvcg", "rpId": "localhost"}))}
    assert client.post("/login/passkey", data=made_up).status_code == 400
    assert client.get("/").status_code == 302


def test_a_deactivated_users_passkey_does_not_sign_them_in(app, client, make_user):
    user = make_user("member", active=False)
    response = client.post("/login/passkey", data=passkey_sign_in_form(client, user.authenticator))
    assert response.status_code == 400 and "deactivated" in response.text
    assert client.get("/").status_code == 302


def test_the_sign_in_page_offers_the_passkey_first_and_the_password_second(client):
    page = client.get("/login").text
    assert page.index("Continue with a passkey") < page.index('name="password"')
    assert 'autocomplete="username webauthn"' in page
