"""What the browser tests share: signing in through the page, how long a live change may take
to show, a phone's screen, and axe-core's serious findings on a page."""
from .accounts import PASSWORD

LIVE = 15_000  # ms: a deadline for a live change to show, wide for a loaded machine


def signed_in(browser, live_server, person, path="/", **context_options):
    """A page of a new browser context (its own cookies), signed in as ``person`` through the
    sign-in form (unless ``person`` is None) and sent on to ``path``."""
    page = browser.new_context(**context_options).new_page()
    page.goto(f"{live_server.url}{path}")
    if person is not None:
        page.get_by_label("Email").fill(person.email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_load_state()
    return page


def give_passkey(page, authenticator, user_handle=None):
    """Chromium's virtual authenticator for ``page`` (DevTools protocol, WebAuthn domain),
    holding the passkey of ``authenticator`` (a tests.support.authenticator.SoftAuthenticator
    registered for someone): the browser answers with it as the user's phone would. With
    ``user_handle`` (bytes) it is discoverable: it can sign in naming no one first."""
    import base64

    from cryptography.hazmat.primitives import serialization

    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable", {"enableUI": False})
    authenticator_id = cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
        "protocol": "ctap2", "transport": "internal", "hasResidentKey": True,
        "hasUserVerification": True, "isUserVerified": True,
        "automaticPresenceSimulation": True}})["authenticatorId"]
    key = authenticator.key.private_bytes(serialization.Encoding.DER,
                                          serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption())
    cdp.send("WebAuthn.addCredential", {"authenticatorId": authenticator_id, "credential": {
        "credentialId": base64.b64encode(authenticator.credential_id).decode(),
        "isResidentCredential": user_handle is not None, "rpId": authenticator.rp_id,
        "privateKey": base64.b64encode(key).decode(), "signCount": authenticator.sign_count,
        **({"userHandle": base64.b64encode(user_handle).decode()} if user_handle else {})}})
    return cdp


# A phone, as the pages are checked on one.
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}

SERIOUS = ("serious", "critical")
# Dark mode changes colours and nothing else (app.css's prefers-color-scheme block only sets
# custom properties; the test below keeps it so), so the dark pass runs the rules that read
# colours and the light pass runs them all: a page's structure is checked once.
EVERY_RULE = {"resultTypes": ["violations"]}
COLOUR_RULES = {"resultTypes": ["violations"],
                "runOnly": {"type": "rule", "values": ["color-contrast", "link-in-text-block"]}}


def axe_violations(page, rules=EVERY_RULE):
    """axe-core's serious and critical findings on ``page``, in words, with where they are."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page, options=rules)
    return [f"{v['id']} ({v['impact']}): {v['help']} at "
            f"{[n['target'] for n in v['nodes']][:3]}"
            for v in results.response["violations"] if v["impact"] in SERIOUS]
