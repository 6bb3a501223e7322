"""What people see and click, in a real browser: requests change state live, without a reload."""
import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from sendauth_dashboard.extensions import db
from sendauth_dashboard.models import Transaction, utcnow
from sendauth_dashboard.runtime import runtime
from sendauth_dashboard.services.requests import transactions
from tests.support.accounts import create_user
from tests.support.browser import LIVE, give_passkey, signed_in
from tests.support.helpers import answer_token, configure_pagerduty, send_request

pytestmark = pytest.mark.browser


@pytest.fixture
def live_server_host_name():
    """Passkeys need a name WebAuthn accepts as a relying party id: not an IP address."""
    return "localhost"


@pytest.fixture
def people(live_server):
    app = live_server.app
    configure_pagerduty(app)
    return {
        "requestor": create_user(app, "requestor", "requestor@example.com", "Hana Helpdesk"),
        "reviewer": create_user(app, "reviewer", "reviewer@example.com", "Rita Reviewer"),
        "user": create_user(app, "member", "uma@example.com", "Uma User", notify_pagerduty=True),
    }


def row(page, public_id):
    return page.locator(f'tr[data-transaction-id="{public_id}"] [data-field="status"]')


def with_virtual_authenticator(page):
    """Chromium's virtual authenticator (DevTools protocol, WebAuthn domain) for this page: a
    platform authenticator that keeps passkeys and verifies its user at once."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable", {"enableUI": False})
    cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
        "protocol": "ctap2", "transport": "internal", "hasResidentKey": True,
        "hasUserVerification": True, "isUserVerified": True,
        "automaticPresenceSimulation": True}})
    return cdp


def enrolment_link(app, person):
    """A passkey enrolment link for ``person``, as an admin issues it."""
    from sendauth_dashboard.models import User
    from sendauth_dashboard.services.people import enrolment

    with app.app_context():
        link = enrolment.url(enrolment.issue(db.session.get(User, person.id), actor=None))
        db.session.commit()
        return link


def send(page, email):
    page.goto(page.url.split("/transactions/", 1)[0] + "/transactions/new")
    page.get_by_label("User's email").fill(email)
    page.get_by_label("Message").fill("Please confirm the MFA reset you asked for")
    page.get_by_label("Context").fill("Ticket #4521")
    page.get_by_role("button", name="Send request").click()


def test_a_passkey_is_registered_then_verifies_a_request_watched_live(
        browser, live_server, people, fake_pagerduty):
    pat = create_user(live_server.app, "member", "pat@example.com", "Pat Passkey",
                      passkey=False, notify_pagerduty=True)
    reviewer = signed_in(browser, live_server, people["reviewer"], "/transactions/")
    expect(reviewer.locator("[data-live-indicator]")).to_have_attribute("data-state", "live",
                                                                        timeout=LIVE)

    requestor = signed_in(browser, live_server, people["requestor"], "/transactions/new")
    send(requestor, pat.email)
    expect(requestor.locator(".field-errors")).to_contain_text("Pat Passkey has no passkey yet")

    user = signed_in(browser, live_server, pat, "/profile/passkeys")
    with_virtual_authenticator(user)
    expect(user.locator("[data-no-passkeys]")).to_be_visible()
    expect(user.locator("[data-needs-enrolment]")).to_be_visible()
    user.goto(enrolment_link(live_server.app, pat))
    user.get_by_label("Passkey name").fill("Work laptop")
    user.get_by_role("button", name="Register my passkey").click()
    expect(user.locator(".flash-success")).to_contain_text(
        "Your passkey 'Work laptop' is registered", timeout=LIVE)
    expect(user.locator("table.passkeys")).to_contain_text("Never")

    send(requestor, pat.email)
    expect(requestor.locator(".flash-success")).to_contain_text("Request sent to Pat Passkey")
    public_id = requestor.url.rsplit("/", 1)[1]
    code = requestor.locator("[data-binding-code]").inner_text()
    expect(row(reviewer, public_id)).to_have_text("pending", timeout=LIVE)
    # The row arrived live, unmarked: a first passkey through the enrolment link is what every
    # new user does, a quiet note on the request's page, not a warning.
    mark = reviewer.locator(f'tr[data-transaction-id="{public_id}"] [data-risk-mark]')
    expect(mark).to_have_count(0)
    expect(requestor.locator("[data-risk-banner]")).to_be_hidden()
    expect(requestor.locator("[data-risk-note]")).to_contain_text(
        "Pat Passkey registered their first passkey less than 24 hours ago")

    fake_pagerduty.wait_for(lambda fake: len(fake.incidents) == 1)
    (incident,) = fake_pagerduty.incidents.values()
    link = incident["links"][0]["href"]
    assert link.startswith(f"{live_server.url}/authenticate/")
    expect(requestor.locator("[data-timeline]")).to_contain_text(
        "PagerDuty accepted the notification", timeout=LIVE)

    user.goto(link)
    expect(user.get_by_role("heading", level=1)).to_have_text(
        "Hana Helpdesk asks you to confirm it is you")
    expect(user.locator("body")).to_contain_text("Ticket #4521")
    user.get_by_label("The code Hana Helpdesk reads to you").fill(code)
    user.get_by_role("button", name="Yes, it is me: verify with my passkey").click()
    expect(user.get_by_role("heading", level=1)).to_have_text("You verified the request",
                                                              timeout=LIVE)

    expect(row(reviewer, public_id)).to_have_text("verified", timeout=LIVE)
    expect(requestor.locator('[data-live-transaction] [data-field="status"]')).to_have_text(
        "verified", timeout=LIVE)
    timeline = requestor.locator("[data-timeline]")
    expect(timeline).to_contain_text("Pat Passkey proved it is them with the passkey 'Work laptop'")
    expect(timeline).to_contain_text("Pat Passkey verified it with a passkey")
    expect(requestor.get_by_role("button", name="Cancel this request")).to_be_hidden()
    expect(requestor.locator("[data-binding-code]")).to_be_hidden()

    user.goto(f"{live_server.url}/profile/passkeys")
    expect(user.locator("table.passkeys")).not_to_contain_text("Never")


def test_a_cut_stream_reconnects_and_shows_everything_it_missed(browser, live_server, people):
    app = live_server.app
    reviewer = signed_in(browser, live_server, people["reviewer"], "/transactions/")
    indicator = reviewer.locator("[data-live-indicator]")
    expect(indicator).to_have_attribute("data-state", "live", timeout=LIVE)

    reviewer.route("**/transactions/stream*", lambda route: route.abort())
    runtime(app).broker.close_all()
    expect(indicator).to_have_attribute("data-state", "reconnecting", timeout=LIVE)

    answered = send_request(app, people["requestor"], people["user"], message="one")
    cancelled = send_request(app, people["requestor"], people["user"], message="two")
    with app.app_context():
        for public_id, change in ((answered, "deny"), (cancelled, "cancel")):
            t = db.session.scalar(select(Transaction).where(Transaction.public_id == public_id))
            if change == "deny":
                transactions.answer(t, "deny", user=t.user)
            else:
                transactions.cancel(t, actor=t.requestor)
        db.session.commit()

    reviewer.unroute("**/transactions/stream*")
    expect(indicator).to_have_attribute("data-state", "live", timeout=15_000)
    expect(row(reviewer, answered)).to_have_text("denied", timeout=LIVE)
    expect(row(reviewer, cancelled)).to_have_text("cancelled", timeout=LIVE)


def test_signed_out_on_a_phone_one_passkey_touch_verifies_and_the_requestor_sees_it_live(
        browser, live_server, people):
    app = live_server.app
    public_id = send_request(app, people["requestor"], people["user"])
    token = answer_token(app, public_id)
    requestor = signed_in(browser, live_server, people["requestor"], f"/transactions/{public_id}")
    expect(requestor.locator("[data-live-indicator]")).to_have_attribute("data-state", "live",
                                                                        timeout=LIVE)
    code = requestor.locator("[data-binding-code]").inner_text()
    phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True).new_page()
    give_passkey(phone, people["user"].authenticator)  # Uma's own passkey, on her phone
    phone.goto(f"{live_server.url}/authenticate/{token}")
    expect(phone.get_by_role("heading", level=1)).to_have_text(
        "Hana Helpdesk asks you to confirm it is you")
    expect(phone.locator(".answer-for")).to_contain_text("For Uma User")
    expect(phone.locator(".answer .countdown")).to_contain_text("s left")
    assert phone.locator("input[type=password]").count() == 0, "no password to type"
    phone.get_by_label("The code Hana Helpdesk reads to you").fill(code)
    phone.get_by_role("button", name="Yes, it is me: verify with my passkey").click()
    expect(phone.get_by_role("heading", level=1)).to_have_text("You verified the request",
                                                               timeout=LIVE)

    banner = requestor.locator("[data-outcome]")
    expect(banner.locator(".outcome-title")).to_have_text("Verified", timeout=LIVE)
    expect(banner).to_contain_text("Uma User confirmed it is them")
    expect(banner).to_contain_text("with their passkey")
    expect(requestor.locator("[data-binding-code]")).to_be_hidden()
    expect(requestor.locator(".code-time")).to_be_hidden()
    assert phone.context.cookies() and not any(
        c["name"] == "remember_token" for c in phone.context.cookies())
    phone.goto(f"{live_server.url}/")
    expect(phone).to_have_url(re.compile(r"/login"))  # answering signed nobody in
    phone.context.close()


def test_an_answer_page_left_open_says_the_request_ended_and_loses_its_buttons(
        browser, live_server, people):
    app = live_server.app
    app.config["ANSWER_STATUS_POLL_SECONDS"] = 0.3  # every 3 s in production
    cancelled = send_request(app, people["requestor"], people["user"], message="one")
    links = {cancelled: answer_token(app, cancelled)}
    expired = send_request(app, people["requestor"], people["user"], message="two")
    links[expired] = answer_token(app, expired)
    page = browser.new_context().new_page()
    heading = page.get_by_role("heading", level=1)
    for public_id, end, words in (
            (cancelled, "cancel",
             "This request was cancelled. Ask Hana Helpdesk to send a new one."),
            (expired, "expire", "This request expired. Ask Hana Helpdesk to send a new one.")):
        page.goto(f"{live_server.url}/authenticate/{links[public_id]}")
        expect(page.locator("form[data-answer-form]")).to_be_visible()
        page.evaluate("window.stillThisPage = true")
        with app.app_context():
            t = db.session.scalar(select(Transaction).where(Transaction.public_id == public_id))
            if end == "cancel":
                transactions.cancel(t, actor=t.requestor)
            else:
                t.expires_at = utcnow() - timedelta(seconds=1)
            db.session.commit()
        expect(heading).to_have_text(words, timeout=LIVE)
        expect(page.locator("form[data-answer-form]")).to_have_count(0)
        expect(page.get_by_role("button")).to_have_count(0)
        assert page.evaluate("window.stillThisPage") is True, "no reload"
    page.context.close()


def test_a_passkey_signs_in_with_no_password_typed(browser, live_server, people):
    uma = people["user"]
    page = browser.new_context().new_page()
    give_passkey(page, uma.authenticator, user_handle=f"sendauth-user-{uma.id}".encode())
    # Where the browser offers passkeys in the email field's autofill (conditional mediation),
    # Chromium's virtual authenticator picks Uma's at once, as her tap on it would.
    page.goto(f"{live_server.url}/login?next=/profile/passkeys")
    expect(page).to_have_url(f"{live_server.url}/profile/passkeys", timeout=LIVE)
    expect(page.locator(".whoami")).to_contain_text("Uma User")
    # A browser without that autofill: the button, first on the page.
    page.add_init_script("PublicKeyCredential.isConditionalMediationAvailable = "
                         "() => Promise.resolve(false);")
    page.locator(".person-menu summary").click()
    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("button", name="Continue with a passkey").click()
    expect(page.locator(".whoami")).to_contain_text("Uma User", timeout=LIVE)
    page.context.close()


# The markup of an element as drawn, without what the page's script does to it afterwards
# (times in the reader's zone, a countdown's seconds, the highlight of what just arrived).
AS_DRAWN = """element => {
  const copy = element.cloneNode(true);
  copy.classList.remove("arrived");
  if (!copy.classList.length) { copy.removeAttribute("class"); }
  copy.querySelectorAll("time[data-utc]").forEach(time => {
    time.textContent = time.getAttribute("data-utc");
    time.removeAttribute("data-utc");
    time.removeAttribute("title");
  });
  copy.querySelectorAll(".countdown").forEach(countdown => { countdown.textContent = ""; });
  return copy.outerHTML;
}"""


def test_a_row_and_a_line_that_arrive_live_are_the_ones_a_reload_shows(
        browser, live_server, people):
    app = live_server.app
    listing = signed_in(browser, live_server, people["reviewer"], "/transactions/")
    expect(listing.locator("[data-live-indicator]")).to_have_attribute(
        "data-state", "live", timeout=LIVE)
    public_id = send_request(app, people["requestor"], people["user"],
                             message="Please confirm the reset of your second factor " * 3)
    arrived = listing.locator(f'tr[data-transaction-id="{public_id}"]')
    expect(arrived).to_have_class("arrived", timeout=LIVE)
    detail = listing.context.new_page()
    detail.goto(f"{live_server.url}/transactions/{public_id}")
    expect(detail.locator("[data-live-indicator]")).to_have_attribute(
        "data-state", "live", timeout=LIVE)
    live_pending = arrived.evaluate(AS_DRAWN)
    listing.reload()
    assert arrived.evaluate(AS_DRAWN) == live_pending
    expect(listing.locator("[data-live-indicator]")).to_have_attribute(
        "data-state", "live", timeout=LIVE)

    with app.app_context():
        t = db.session.scalar(select(Transaction).where(Transaction.public_id == public_id))
        transactions.cancel(t, actor=t.requestor)
        db.session.commit()
    expect(row(listing, public_id)).to_have_text("cancelled", timeout=LIVE)
    line = detail.locator("[data-timeline] li", has_text="cancelled the request")
    expect(line).to_have_class("arrived", timeout=LIVE)
    live_row, live_line = arrived.evaluate(AS_DRAWN), line.evaluate(AS_DRAWN)
    listing.reload()
    detail.reload()
    assert arrived.evaluate(AS_DRAWN) == live_row
    assert line.evaluate(AS_DRAWN) == live_line
