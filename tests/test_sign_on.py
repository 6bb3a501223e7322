"""Signing in through the organisation's identity provider (OpenID Connect), against a real
provider in a thread: a sign-in like any other; each broken answer refused with a page that
says why, leaving the database as it was; roles from the provider's claim; and "Require single
sign-on" with its break-glass admins."""
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select

from sendauth_dashboard.extensions import db
from sendauth_dashboard.models import Event, Passkey, SignIn, SignOnIdentity, User
from sendauth_dashboard.services.sign_on import configuration
from tests.support.helpers import database_rows
from tests.support.identity_provider import identity_provider
from tests.support.web import AuthActions, passkey_sign_in_form


@pytest.fixture(scope="module")
def shared_provider():
    with identity_provider() as provider:
        yield provider


@pytest.fixture
def provider(shared_provider):
    yield shared_provider
    shared_provider.tamper(None)


def set_up_sign_on(app, provider, **settings):
    """Single sign-on set up the way an admin saves it (discovery read from the provider)."""
    values = {"issuer": provider.url, "client_id": "sendauth-dashboard",
              "client_secret": "client secret of the tests", "allowed_domains": "example.com",
              "button_label": "Sign in with Example", **settings}
    with app.app_context():
        configuration.save(configuration.Submitted(**values), actor=None)
        db.session.commit()


@pytest.fixture
def sign_on(app, provider):
    set_up_sign_on(app, provider)
    return provider


def local(url):
    """The path and query of ``url``: the test client is this app whatever its host."""
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


def through_provider(client, provider, sub, start="/login/oidc"):
    """Start a sign-in, authorize ``sub`` at the provider; returns where it sends the browser
    back (this app's callback, with the code and state)."""
    started = client.get(start)
    assert started.status_code == 302, started.text
    return local(provider.authorize(started.headers["Location"], sub))


def sign_in_through(client, provider, sub, start="/login/oidc"):
    return client.get(through_provider(client, provider, sub, start))


def refused_page(response, *words):
    assert response.status_code == 400
    assert 'role="alert"' in response.text and "Sign in" in response.text
    for word in words:
        assert word in response.text
    return response


def events_of(app, kind):
    with app.app_context():
        return db.session.scalars(select(Event).where(Event.kind == kind)).all()


# -- a sign-in like any other --------------------------------------------------------------------

def test_the_sign_in_page_shows_the_providers_button_first(app, client, sign_on):
    page = client.get("/login").text
    assert page.index("Sign in with Example") < page.index("Continue with a passkey") < \
        page.index('name="password"')


def test_first_sign_in_of_an_allowed_domain_creates_a_member_signed_in_like_any_other(
        app, client, sign_on):
    sign_on.person("nia@example.com", name="Nia Newcomer")
    response = sign_in_through(client, sign_on, "nia@example.com",
                               "/login/oidc?next=/profile/passkeys")
    assert response.status_code == 302
    assert response.headers["Location"] == "/profile/passkeys"
    assert "Nia Newcomer" in client.get("/").text
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == "nia@example.com"))
        assert (user.name, user.role, user.active) == ("Nia Newcomer", "member", True)
        assert user.last_sign_in_at is not None
        assert db.session.scalar(select(SignIn.user_id).where(SignIn.ended_at.is_(None))) == \
            user.id
        identity = db.session.scalar(select(SignOnIdentity))
        assert (identity.user_id, identity.issuer, identity.subject) == \
            (user.id, sign_on.url, "nia@example.com")
        assert db.session.scalar(select(Passkey.id)) is None, "SSO never adds a passkey"
    assert [e.data["email"] for e in events_of(app, "user.created")] == ["nia@example.com"]
    assert events_of(app, "user.sign_on_linked")[0].data["created"] is True
    assert events_of(app, "user.signed_in")[0].data == {"method": "single sign-on"}


def test_an_existing_account_is_linked_by_its_verified_email_and_found_by_subject_after(
        app, client, sign_on, make_user):
    reviewer = make_user("reviewer", email="rui@example.com", name="Rui Reviewer")
    sign_on.person("rui-at-provider", email="RUI@example.com")
    assert sign_in_through(client, sign_on, "rui-at-provider").status_code == 302
    assert "Rui Reviewer" in client.get("/").text
    AuthActions(client).logout()
    # The provider renames the address later: the link, not the email, says who it is.
    sign_on.person("rui-at-provider", email="rui.renamed@example.com")
    assert sign_in_through(client, sign_on, "rui-at-provider").status_code == 302
    assert "Rui Reviewer" in client.get("/").text
    with app.app_context():
        user = db.session.get(User, reviewer.id)
        assert user.role == "reviewer", "without a role claim, roles stay as set here"
        assert db.session.scalar(select(SignOnIdentity.user_id)) == reviewer.id
    assert len(events_of(app, "user.signed_in")) == 2
    assert events_of(app, "user.sign_on_linked")[0].data["created"] is False


def test_an_account_linked_to_one_provider_account_is_not_opened_by_another_with_its_email(
        app, client, sign_on, make_user):
    make_user("admin", email="boss@example.com")
    sign_on.person("boss-original", email="boss@example.com")
    assert sign_in_through(client, sign_on, "boss-original").status_code == 302
    AuthActions(client).logout()
    sign_on.person("someone-else", email="boss@example.com")
    before = database_rows(app)
    refused_page(sign_in_through(client, sign_on, "someone-else"),
                 "linked to another account at the identity provider")
    assert database_rows(app) == before


def test_a_deactivated_account_is_not_signed_in_through_the_provider(app, client, sign_on,
                                                                    make_user):
    make_user("member", email="gone@example.com", active=False)
    sign_on.person("gone@example.com")
    before = database_rows(app)
    refused_page(sign_in_through(client, sign_on, "gone@example.com"), "deactivated")
    assert database_rows(app) == before


# -- refused answers -------------------------------------------------------------------------------

def assert_refused_and_nothing_saved(app, client, back, *words):
    before = database_rows(app)
    refused_page(client.get(back), *words)
    assert database_rows(app) == before, "a refused sign-in changed the database"
    assert client.get("/").status_code == 302, "nobody is signed in"


def test_an_answer_with_a_wrong_state_is_refused(app, client, sign_on):
    sign_on.person("sam@example.com")
    back = through_provider(client, sign_on, "sam@example.com")
    query = parse_qs(urlsplit(back).query)
    assert_refused_and_nothing_saved(
        app, client, f"/login/oidc/callback?code={query['code'][0]}&state=forged",
        "state does not match")


def test_an_answer_from_another_browsers_sign_in_is_refused(app, sign_on):
    """Login CSRF: an attacker's own code and state, handed to the victim's browser."""
    sign_on.person("mallory@example.com")
    back = through_provider(app.test_client(), sign_on, "mallory@example.com")
    assert_refused_and_nothing_saved(app, app.test_client(), back, "state does not match")


def test_a_replayed_code_is_refused(app, client, sign_on):
    sign_on.person("rita@example.com")
    first = through_provider(client, sign_on, "rita@example.com")
    assert client.get(first).status_code == 302
    AuthActions(client).logout()
    # The same answer again: its state was spent with it.
    assert_refused_and_nothing_saved(app, client, first, "state does not match")
    # Its code under a state of this browser's new sign-in: the provider spends a code once.
    started = client.get("/login/oidc")
    state = parse_qs(urlsplit(started.headers["Location"]).query)["state"][0]
    code = parse_qs(urlsplit(first).query)["code"][0]
    assert_refused_and_nothing_saved(
        app, client, f"/login/oidc/callback?code={code}&state={state}",
        "refused the sign-in code", "a code works once")


def test_an_id_token_made_for_another_sign_in_is_refused_by_its_nonce(app, client, sign_on):
    sign_on.person("nora@example.com")
    back = through_provider(client, sign_on, "nora@example.com")
    with client.session_transaction() as session:
        session["sign_on_pending"] = {
            state: {**pending, "nonce": "the nonce of another sign-in"}
            for state, pending in session["sign_on_pending"].items()}
    assert_refused_and_nothing_saved(app, client, back, "its nonce does not match")


def test_an_unverified_email_is_refused(app, client, sign_on):
    sign_on.person("una@example.com", email_verified=False)
    back = through_provider(client, sign_on, "una@example.com")
    assert_refused_and_nothing_saved(app, client, back, "has not verified una@example.com")


def test_an_email_outside_the_allowed_domains_is_refused(app, client, sign_on):
    sign_on.person("olga@elsewhere.org")
    back = through_provider(client, sign_on, "olga@elsewhere.org")
    assert_refused_and_nothing_saved(app, client, back, "olga@elsewhere.org is not at an email "
                                     "domain this organisation signs in", "example.com")


def test_an_expired_id_token_is_refused(app, client):
    with identity_provider(token_lifetime=timedelta(minutes=-10)) as provider:
        set_up_sign_on(app, provider)
        provider.person("eve@example.com")
        back = through_provider(client, provider, "eve@example.com")
        assert_refused_and_nothing_saved(app, client, back, "it has expired")


@pytest.mark.parametrize("tampering", [{"email": "admin@example.com"}, "unsigned"],
                         ids=["changed after signing", "alg none"])
def test_an_id_token_not_signed_by_the_provider_is_refused(app, client, sign_on, make_user,
                                                            tampering):
    make_user("admin", email="admin@example.com")
    sign_on.person("mia@example.com")
    sign_on.tamper(tampering)
    back = through_provider(client, sign_on, "mia@example.com")
    assert_refused_and_nothing_saved(app, client, back, "ID token was refused")


def test_the_providers_own_refusal_is_shown_but_only_for_this_browsers_sign_in(app, client,
                                                                              sign_on):
    forged = client.get("/login/oidc/callback?error=access_denied&state=forged"
                        "&error_description=Call+0800+123+to+restore+your+account")
    assert "state does not match" in refused_page(forged).text
    assert "0800" not in forged.text
    started = client.get("/login/oidc")
    state = parse_qs(urlsplit(started.headers["Location"]).query)["state"][0]
    assert_refused_and_nothing_saved(
        app, client, f"/login/oidc/callback?error=access_denied&state={state}"
        "&error_description=The+user+denied+access", "did not sign you in: The user denied access")


# -- roles from the provider --------------------------------------------------------------------

ROLE_MAP = "sendauth-admins = admin\nhelp-desk = requestor\nsecurity = reviewer"


def role_of(app, email):
    with app.app_context():
        return db.session.scalar(select(User.role).where(User.email == email))


def test_roles_come_from_the_providers_claim_highest_wins_unmapped_is_member(app, provider):
    set_up_sign_on(app, provider, role_claim="groups", role_map=ROLE_MAP)
    provider.person("hal@example.com", groups=["help-desk", "everyone", "security"])
    assert sign_in_through(app.test_client(), provider, "hal@example.com").status_code == 302
    assert role_of(app, "hal@example.com") == "reviewer"
    provider.person("hal@example.com", groups=["everyone"])
    assert sign_in_through(app.test_client(), provider, "hal@example.com").status_code == 302
    assert role_of(app, "hal@example.com") == "member"
    changed = events_of(app, "user.role_changed")
    assert [(e.data["from"], e.data["to"]) for e in changed] == [("reviewer", "member")]


def test_a_break_glass_admin_keeps_their_role_whatever_the_claim_says(app, provider, make_user):
    keeper = make_user("admin", email="keeper@example.com")
    with app.app_context():
        db.session.get(User, keeper.id).break_glass = True
        db.session.commit()
    set_up_sign_on(app, provider, role_claim="groups", role_map=ROLE_MAP,
                   break_glass_ids=(keeper.id,))
    provider.person("keeper@example.com", groups=["help-desk"])
    assert sign_in_through(app.test_client(), provider, "keeper@example.com").status_code == 302
    assert role_of(app, "keeper@example.com") == "admin"


# -- require single sign-on ----------------------------------------------------------------------

@pytest.fixture
def sso_required(app, provider, make_user):
    """Single sign-on required; Bea is the break-glass admin, Ada another admin."""
    bea = make_user("admin", email="bea@example.com", name="Bea Breakglass")
    ada = make_user("admin", email="ada@example.com", name="Ada Admin")
    set_up_sign_on(app, provider, require_sso=True, break_glass_ids=(bea.id,))
    return bea, ada


def test_with_sso_required_only_break_glass_admins_sign_in_with_a_password(app, client,
                                                                         sso_required,
                                                                         make_user):
    bea, ada = sso_required
    member = make_user("member")
    auth = AuthActions(client)
    for person in (ada, member):
        before = database_rows(app)
        page = auth.login(person)
        assert page.status_code == 200
        assert "signs in through its identity provider: use “Sign in with Example”" in page.text
        assert database_rows(app) == before
        assert client.get("/").status_code == 302
    assert "Passwords sign in only the break-glass admins" in client.get("/login").text
    assert auth.login(bea).status_code == 302
    assert "Bea Breakglass" in client.get("/").text


def test_with_sso_required_a_passkey_does_not_sign_in_but_a_break_glass_admins_does(
        app, client, sso_required, make_user):
    bea, _ = sso_required
    member = make_user("member")
    refused = client.post("/login/passkey", data=passkey_sign_in_form(client, member.authenticator))
    assert refused.status_code == 400
    assert "Only break-glass admins sign in with a password or passkey" in refused.text
    assert client.post("/login/passkey", data=passkey_sign_in_form(
        client, bea.authenticator)).status_code == 302


def test_with_sso_required_the_provider_still_signs_everyone_in(app, client, sso_required,
                                                             provider):
    _, ada = sso_required
    provider.person("ada@example.com")
    assert sign_in_through(client, provider, "ada@example.com").status_code == 302
    assert "Ada Admin" in client.get("/").text


def test_sso_cannot_be_required_without_a_break_glass_admin(app, provider, make_user):
    make_user("admin")
    with app.app_context():
        with pytest.raises(configuration.SignInSettingsError, match="at least one admin as "
                           "break-glass"):
            configuration.save(configuration.Submitted(
                issuer=provider.url, client_id="c", client_secret="s",
                allowed_domains="example.com", require_sso=True), actor=None)


def test_the_last_break_glass_admin_cannot_be_demoted_or_deactivated(app, sso_required):
    from sendauth_dashboard.services.people import accounts

    bea, ada = sso_required
    with app.app_context():
        user, actor = db.session.get(User, bea.id), db.session.get(User, ada.id)
        with pytest.raises(accounts.AccountError, match="last break-glass admin"):
            accounts.change_role(user, "member", actor=actor)
        with pytest.raises(accounts.AccountError, match="last break-glass admin"):
            accounts.set_active(user, False, actor=actor)
        db.session.rollback()
        actor.break_glass = True  # with a second one, either works
        assert accounts.change_role(user, "member", actor=actor)


def test_the_admin_an_operator_restores_is_break_glass_so_their_password_works(
        app, client, sso_required):
    from sendauth_dashboard.services.people import accounts
    from tests.support.accounts import PASSWORD

    with app.app_context():
        for admin in db.session.scalars(select(User).where(User.role == "admin")):
            admin.active = False
        restored = accounts.restore_admin(email="ops@example.com", name="Ops", password=PASSWORD)
        db.session.commit()
        assert restored.is_break_glass
    assert AuthActions(client).login("ops@example.com").status_code == 302


def test_a_client_secret_that_cannot_be_read_is_said_on_the_sign_in_page(app, client, sign_on):
    with app.app_context():
        configuration.settings().client_secret_ciphertext = "written under another key"
        db.session.commit()
    response = client.get("/login/oidc")
    assert response.status_code == 503
    assert "enter it again in Settings → Sign-in" in response.text


# -- the ID token's checks, one by one -----------------------------------------------------------

ISSUER, CLIENT = "https://idp.example.com", "sendauth-dashboard"


def signed_id_token(key, **changes):
    import time

    from joserfc import jwt

    now = int(time.time())
    claims = {"iss": ISSUER, "aud": CLIENT, "sub": "s-1", "iat": now, "exp": now + 300,
              "nonce": "n-1", "email": "ida@example.com", "email_verified": True, **changes}
    return jwt.encode({"alg": "RS256", "kid": key.kid}, {k: v for k, v in claims.items()
                                                          if v is not None}, key)


@pytest.mark.parametrize("changes, words", [
    ({}, None),
    ({"iss": "https://other.example.com"}, "issued by another provider"),
    ({"aud": "another-app"}, "issued for another application"),
    ({"aud": [CLIENT, "another-app"], "azp": "another-app"}, "issued for another application"),
    ({"exp": 1_000_000}, "it has expired"),
    ({"iat": 4_000_000_000}, "dated in the future"),
    ({"nonce": "n-2"}, "its nonce does not match"),
    ({"nonce": None}, "its nonce does not match"),
    ({"sub": None}, "its sub claim is missing or wrong"),
], ids=["as made", "issuer", "audience", "authorized party", "expired", "future", "nonce",
        "no nonce", "no subject"])
def test_each_claim_of_the_id_token_is_checked(monkeypatch, changes, words):
    from types import SimpleNamespace

    from joserfc.jwk import KeySet, RSAKey

    from sendauth_dashboard.services.sign_on import flow

    key = RSAKey.generate_key(2048, parameters={"kid": "k-1"})
    monkeypatch.setattr(flow, "_key_set", lambda settings: KeySet([key]))
    settings = SimpleNamespace(issuer=ISSUER, client_id=CLIENT, signing_algorithms=["RS256"])
    token = {"id_token": signed_id_token(key, **changes)}
    if words is None:
        assert flow.id_token_claims(settings, token, "n-1")["email"] == "ida@example.com"
        return
    with pytest.raises(flow.SignOnError) as refused:
        flow.id_token_claims(settings, token, "n-1")
    assert "ID token was refused" in str(refused.value) and words in str(refused.value)
