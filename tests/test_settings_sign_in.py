"""Settings → Sign-in (admins): the identity provider read and checked through its discovery
document, the client secret stored only encrypted and never shown back, the rules said beside
the field they are about; and the password page under "Require single sign-on"."""
import pytest
from sqlalchemy import select

from sendauth_dashboard.extensions import db
from sendauth_dashboard.models import Event, SignInSettings, User
from sendauth_dashboard.services.sign_on import configuration, discovery
from tests.support.helpers import database_rows
from tests.support.identity_provider import identity_provider

SECRET = "cl1ent-secret-of-the-tests-9Zq"


@pytest.fixture(scope="module")
def provider():
    with identity_provider() as provider:
        yield provider


def form(provider_url, **fields):
    return {"oidc_issuer": provider_url, "oidc_client_id": "sendauth-dashboard",
            "oidc_client_secret": SECRET, "oidc_allowed_domains": "example.com\nCorp.Example.com",
            "oidc_button_label": "Sign in with Example", **fields}


def test_admin_sets_up_the_provider_and_never_sees_the_secret_again(app, client, as_admin,
                                                                   provider):
    response = as_admin.post("/settings/sign-in", data=form(provider.url),
                             token_page="/settings/sign-in")
    assert response.status_code == 302, response.text
    page = client.get("/settings/sign-in").text
    assert SECRET not in page
    assert "\u2022" * (len(SECRET) - 4) + SECRET[-4:] in page
    assert "http://sendauth.test/login/oidc/callback" in page
    assert 'aria-current="page">Sign-in' in page, "a line of its own in the admin menu"
    with app.app_context():
        row = db.session.get(SignInSettings, 1)
        assert (row.issuer, row.token_endpoint) == (provider.url, f"{provider.url}/oauth2/token")
        assert row.allowed_domains == ["corp.example.com", "example.com"]
        assert SECRET not in row.client_secret_ciphertext
        assert configuration.client_secret(row) == SECRET
        event = db.session.scalar(select(Event).where(Event.kind == "settings.sign_in_changed"))
        assert SECRET not in str(event.data) and "client secret set" in event.data["changes"]
    # Saved again with the secret left empty: the stored one stays.
    as_admin.post("/settings/sign-in", data=form(provider.url, oidc_client_secret=""),
                  token_page="/settings/sign-in")
    with app.app_context():
        assert configuration.client_secret() == SECRET
    as_admin.logout()
    assert "Sign in with Example" in client.get("/login").text


@pytest.mark.parametrize("fields, field, words", [
    ({"oidc_issuer": "http://idp.example.com"}, "oidc_issuer",
     "must start with https://: http:// is only for a provider on this machine"),
    ({"oidc_issuer": "http://127.0.0.1:9"}, "oidc_issuer", "The issuer did not answer"),
    ({"oidc_allowed_domains": ""}, "oidc_allowed_domains", "at least one email domain"),
    ({"oidc_allowed_domains": "example.com, not a domain"}, "oidc_allowed_domains",
     "is not an email domain"),
    ({"oidc_client_secret": ""}, "oidc_client_secret", "Enter the client secret"),
    ({"oidc_role_claim": "groups", "oidc_role_map": "help-desk = boss"}, "oidc_role_map",
     "maps to 'boss', which is not a role"),
    ({"oidc_role_map": "help-desk = requestor"}, "oidc_role_claim", "Name the claim"),
    ({"require_sso": "y"}, "break_glass", "Mark at least one admin as break-glass"),
], ids=["http elsewhere", "unreachable", "no domain", "bad domain", "no secret", "bad role",
        "map without claim", "no break-glass"])
def test_a_setting_that_cannot_work_is_refused_beside_its_field(app, client, as_admin,
                                                               provider, fields, field, words):
    before = database_rows(app)
    response = as_admin.post("/settings/sign-in", data=form(provider.url, **fields),
                             token_page="/settings/sign-in")
    assert response.status_code == 400
    assert f'id="{field}-errors"' in response.text
    assert words in response.text.replace("&#39;", "'")
    assert SECRET not in response.text
    assert database_rows(app) == before


def document(issuer="https://idp.example.com", **changes):
    return {"issuer": issuer, "authorization_endpoint": f"{issuer}/authorize",
            "token_endpoint": f"{issuer}/token", "jwks_uri": f"{issuer}/keys",
            "response_types_supported": ["code"],
            "id_token_signing_alg_values_supported": ["RS256"], **changes}


@pytest.mark.parametrize("changes, words", [
    ({"issuer": "https://other.example.com"}, "names the issuer 'https://other.example.com'"),
    ({"token_endpoint": None}, "has no token endpoint"),
    ({"jwks_uri": "http://idp.example.com/keys"}, "key set (jwks_uri) in the discovery "
     "document must start with https://"),
    ({"response_types_supported": ["id_token"]}, "does not offer the authorization code flow"),
    ({"id_token_signing_alg_values_supported": ["none"]}, "no algorithm ('none')"),
])
def test_a_discovery_document_that_cannot_be_trusted_is_refused(changes, words):
    with pytest.raises(discovery.DiscoveryError) as refused:
        discovery._checked("https://idp.example.com", document(**changes))
    assert words in str(refused.value)


def test_the_password_page_says_when_single_sign_on_is_required(app, client, auth, provider,
                                                                make_user):
    keeper = make_user("admin", email="keeper@example.com")
    member = make_user("member")
    with app.app_context():
        configuration.save(configuration.Submitted(
            issuer=provider.url, client_id="c", client_secret=SECRET,
            allowed_domains="example.com", require_sso=True, break_glass_ids=(keeper.id,)),
            actor=None)
        db.session.commit()
        assert db.session.get(User, keeper.id).is_break_glass
    auth.login(keeper)
    assert "you are a break-glass admin" in client.get("/profile/password").text
    auth.logout()
    with app.app_context():
        configuration.save(configuration.Submitted(
            issuer=provider.url, client_id="c", allowed_domains="example.com",
            require_sso=False, break_glass_ids=(keeper.id,)), actor=None)
        db.session.commit()
    auth.login(member)
    assert "break-glass" not in client.get("/profile/password").text
    with app.app_context():
        configuration.save(configuration.Submitted(
            issuer=provider.url, client_id="c", allowed_domains="example.com",
            require_sso=True, break_glass_ids=(keeper.id,)), actor=None)
        db.session.commit()
    assert "this password no longer signs you in" in client.get("/profile/password").text
