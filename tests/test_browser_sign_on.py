"""Signing in through the identity provider, in a real browser on a phone, in dark mode: the
button first, the provider's form, and back signed in; the pages pass axe-core."""
import pytest
from playwright.sync_api import expect

from sendauth_dashboard.extensions import db
from sendauth_dashboard.services.sign_on import configuration
from tests.support.browser import COLOUR_RULES, EVERY_RULE, PHONE, axe_violations
from tests.support.identity_provider import identity_provider

pytestmark = pytest.mark.browser


def test_a_person_signs_in_through_the_provider_from_the_first_button(browser, live_server):
    app = live_server.app
    with identity_provider() as provider:
        with app.app_context():
            configuration.save(configuration.Submitted(
                issuer=provider.url, client_id="sendauth-dashboard", client_secret="secret",
                allowed_domains="example.com", button_label="Sign in with Example",
                role_claim="groups", role_map="sendauth-admins = admin"), actor=None)
            db.session.commit()
        provider.person("ines@example.com", name="Ines Incoming", groups=["sendauth-admins"])
        context = browser.new_context(color_scheme="dark", **PHONE)
        # The provider's page asks a CDN for its stylesheet: nothing leaves this machine.
        context.route("https://**/*", lambda route: route.abort())
        page = context.new_page()
        page.goto(f"{live_server.url}/login")
        assert axe_violations(page, EVERY_RULE) == []
        buttons = page.locator("main a.button, main button")
        expect(buttons.first).to_have_text("Sign in with Example")
        buttons.first.click()
        page.get_by_placeholder("sub").fill("ines@example.com")
        page.get_by_role("button", name="Authorize").click()
        expect(page.locator(".person-menu summary")).to_contain_text("Ines Incoming admin")
        page.goto(f"{live_server.url}/settings/sign-in")
        expect(page.get_by_label("Issuer")).to_have_value(provider.url)
        assert axe_violations(page, EVERY_RULE) == []
        page.emulate_media(color_scheme="light")
        assert axe_violations(page, COLOUR_RULES) == []
        context.close()
