"""The trust story in a real browser (the system Chromium, passkeys from its virtual
authenticator): someone with only the user's password can neither add nor remove a passkey,
nor redirect the user's requests, nor change the password, nor verify one; the real user is
invited, enrols, adds a second passkey with the first and changes their phone and password."""
import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from sendauth_dashboard.extensions import db
from sendauth_dashboard.models import Passkey, Transaction, User
from tests.support.accounts import PASSWORD, create_user
from tests.support.browser import LIVE, signed_in
from tests.support.helpers import answer_token, configure_pagerduty, send_request

pytestmark = pytest.mark.browser

NEW_PASSWORD = "plum kettle orbit sand"


@pytest.fixture
def live_server_host_name():
    """Passkeys need a name WebAuthn accepts as a relying party id: not an IP address."""
    return "localhost"


def passkey_names(app, email):
    with app.app_context():
        return db.session.scalars(select(Passkey.name).join(User).where(User.email == email)
                                  .order_by(Passkey.id)).all()


def user_row(app, email):
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == email))
        return user.notify_email, user.notify_slack, user.slack_member_id, user.phone


def add_authenticator(cdp, transport="internal"):
    """A virtual authenticator that keeps passkeys and verifies its user at once; its id."""
    return cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
        "protocol": "ctap2", "transport": transport, "hasResidentKey": True,
        "hasUserVerification": True, "isUserVerified": True,
        "automaticPresenceSimulation": True}})["authenticatorId"]


def virtual_authenticator(page):
    """Chromium's WebAuthn domain for ``page``, with one authenticator: (session, its id)."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable", {"enableUI": False})
    return cdp, add_authenticator(cdp)


def change_password(page, live_server, current):
    page.goto(f"{live_server.url}/profile/password")
    page.get_by_label("Current password").fill(current)
    page.get_by_label("New password", exact=True).fill("violet harbour lantern moss")
    page.get_by_label("The new password again").fill("violet harbour lantern moss")
    page.get_by_role("button", name="Change password").click()


@pytest.mark.usefixtures("every_channel_offered")
def test_the_real_user_is_invited_enrols_adds_a_passkey_and_changes_their_phone(
        browser, live_server):
    app = live_server.app
    admin = create_user(app, "admin", "ada@example.com", "Ada Admin")
    page = signed_in(browser, live_server, admin, "/settings/users")
    form = page.locator("form[action='/settings/users']")
    form.get_by_label("Email", exact=True).fill("nora@example.com")
    form.get_by_label("Name").fill("Nora New")
    page.get_by_role("button", name="Invite user").click()
    link = page.locator("[data-enrolment-link]").inner_text()
    assert link.startswith(f"{live_server.url}/enrol/")

    nora = browser.new_context().new_page()
    cdp, laptop = virtual_authenticator(nora)
    nora.goto(link)
    nora.get_by_label("Choose your password").fill(NEW_PASSWORD)
    nora.get_by_label("The same password again").fill(NEW_PASSWORD)
    nora.get_by_label("Passkey name").fill("Laptop")
    nora.get_by_role("button", name="Register my passkey").click()
    expect(nora.locator(".flash-success")).to_contain_text("Welcome, Nora New", timeout=LIVE)
    assert passkey_names(app, "nora@example.com") == ["Laptop"]

    # A second passkey, on a security key: the laptop's passkey proves it is Nora first. The
    # key is plugged in (and the laptop's authenticator set aside) once that proof is given,
    # so the new passkey lands on the key, not beside the one it excludes.
    def plug_in_the_key(route):
        cdp.send("WebAuthn.removeVirtualAuthenticator", {"authenticatorId": laptop})
        add_authenticator(cdp, "usb")
        route.continue_()

    nora.route("**/profile/passkeys/options", plug_in_the_key)
    nora.goto(f"{live_server.url}/profile/passkeys")
    nora.get_by_label("Name").fill("Security key")
    nora.get_by_role("button", name="Register a passkey").click()
    expect(nora.locator(".flash-success")).to_contain_text(
        "Your passkey 'Security key' is registered", timeout=LIVE)
    assert passkey_names(app, "nora@example.com") == ["Laptop", "Security key"]

    nora.goto(f"{live_server.url}/profile/messaging")
    nora.get_by_label("SMS", exact=True).check()
    nora.get_by_label("Phone number").fill("+1 415 555 0123")
    nora.get_by_role("button", name="Save preferences").click()
    expect(nora.locator(".flash-success")).to_contain_text("SMS on; phone number added",
                                                           timeout=LIVE)
    assert user_row(app, "nora@example.com")[3] == "+14155550123"

    change_password(nora, live_server, NEW_PASSWORD)  # the security key proves it
    expect(nora.locator(".flash-success")).to_contain_text("Your password is changed",
                                                           timeout=LIVE)


@pytest.mark.usefixtures("every_channel_offered")
def test_with_only_the_password_nothing_can_be_added_redirected_or_verified(
        browser, live_server, fake_pagerduty):
    app = live_server.app
    configure_pagerduty(app)
    uma = create_user(app, "member", "uma@example.com", "Uma User", notify_pagerduty=True)
    requestor = create_user(app, "requestor", "hana@example.com", "Hana Helpdesk")
    attacker = signed_in(browser, live_server, uma, "/profile/passkeys")
    virtual_authenticator(attacker)  # the attacker's own device, none of Uma's passkeys

    attacker.get_by_label("Name").fill("Mine now")
    attacker.get_by_role("button", name="Register a passkey").click()
    expect(attacker.locator("form[data-passkey-register] [data-passkey-error]")).to_be_visible(
        timeout=LIVE)
    attacker.locator("table.passkeys summary").first.click()  # "Remove…" asks first
    attacker.get_by_role("button", name="Yes, remove").click()
    expect(attacker.locator("form[data-prove-first] [data-passkey-error]")).to_be_visible(
        timeout=LIVE)
    assert passkey_names(app, "uma@example.com") == ["Test passkey"]

    attacker.goto(f"{live_server.url}/profile/messaging")
    attacker.get_by_label("Email", exact=True).uncheck()
    attacker.get_by_label("Slack", exact=True).check()
    attacker.get_by_label("Slack member id").fill("U0ATTACKER")
    attacker.get_by_role("button", name="Save preferences").click()
    expect(attacker.locator("[data-passkey-error]")).to_be_visible(timeout=LIVE)
    # The form posted without the page's script (as a script of the attacker's would):
    attacker.evaluate("HTMLFormElement.prototype.submit.call("
                      "document.querySelector('form[data-messaging-form]'))")
    expect(attacker.locator(".field-errors")).to_contain_text(
        "Prove it is you with one of your passkeys first", timeout=LIVE)
    assert user_row(app, "uma@example.com")[:3] == (True, False, None)

    change_password(attacker, live_server, PASSWORD)  # knows it, but has none of her passkeys
    expect(attacker.locator("[data-passkey-error]")).to_be_visible(timeout=LIVE)
    with app.app_context():
        assert db.session.scalar(select(User.password_changed_at)
                                 .where(User.email == "uma@example.com")) is None

    public_id = send_request(app, requestor, uma)
    with app.app_context():
        code = db.session.scalar(select(Transaction.binding_code)
                                 .where(Transaction.public_id == public_id))
    attacker.goto(f"{live_server.url}/authenticate/{answer_token(app, public_id)}")
    attacker.get_by_label("The code Hana Helpdesk reads to you").fill(code)  # heard on the phone
    attacker.get_by_role("button", name="Yes, it is me: verify with my passkey").click()
    expect(attacker.locator("[data-passkey-error]")).to_be_visible(timeout=LIVE)
    with app.app_context():
        assert db.session.scalar(select(Transaction.status)
                                 .where(Transaction.public_id == public_id)) == "pending"

    hana = signed_in(browser, live_server, requestor, f"/transactions/{public_id}")
    expect(hana.locator("[data-risk-note]")).to_contain_text(
        "Uma User registered their first passkey less than 24 hours ago")
