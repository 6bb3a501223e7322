"""The overview pages in a real browser: charts draw under the CSP, the home page stays live."""
import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from sendauth_dashboard.channels import integration
from sendauth_dashboard.extensions import db
from sendauth_dashboard.models import Transaction
from tests.support.accounts import PASSWORD, create_user
from tests.support.browser import COLOUR_RULES, EVERY_RULE, LIVE, axe_violations
from tests.support.helpers import configure_pagerduty, send_request

pytestmark = pytest.mark.browser

WATCH_PROBLEMS = """
window.__problems = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__problems.push("CSP: " + e.violatedDirective + " " + e.blockedURI);
});
"""


def watched_page(browser, **context_options):
    """A page that records console errors, uncaught exceptions, CSP violations and any answer
    that is a 404 (the browser's own request for a favicon too)."""
    page = browser.new_context(**context_options).new_page()
    problems = []
    page.on("console", lambda m: m.type == "error" and problems.append(m.text))
    page.on("response", lambda r: r.status == 404 and problems.append(f"404 {r.url}"))
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.add_init_script(WATCH_PROBLEMS)
    return page, problems


def sign_in(page, live_server, person, path):
    page.goto(f"{live_server.url}{path}")
    page.get_by_label("Email").fill(person.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def test_insights_draws_every_chart_with_no_error_and_no_csp_violation(browser, live_server):
    """In Kolkata (UTC+5:30) the page counts Kolkata's days, without being asked; figures on
    top, durations in words, tables behind Show data, and an empty range says so."""
    app = live_server.app
    configure_pagerduty(app)
    requestor = create_user(app, "requestor", "hana@example.com", "Hana Helpdesk")
    user = create_user(app, "member", "uma@example.com", "Uma User", notify_pagerduty=True)
    reviewer = create_user(app, "reviewer", "rita@example.com", "Rita Reviewer")
    public_id = send_request(app, requestor, user)
    with app.app_context():
        transaction = db.session.scalar(db.select(Transaction).filter_by(public_id=public_id))
        transaction.status = "verified"
        transaction.completed_at = transaction.created_at + timedelta(seconds=197)
        db.session.commit()

    page, problems = watched_page(browser, timezone_id="Asia/Kolkata")
    sign_in(page, live_server, reviewer, "/insights?days=7")
    # Chromium names the zone by its older name, which zoneinfo knows too.
    expect(page.locator("[data-zone-name]")).to_have_text(
        re.compile(r"Asia/(Kolkata|Calcutta)"), timeout=LIVE)
    expect(page.locator("[data-total]")).to_have_text("1")
    expect(page.locator("[data-median-answer]")).to_have_text("3 min 17 s")
    charts = page.locator("canvas[data-chart]")
    expect(charts.first).to_have_attribute("data-drawn", "true", timeout=LIVE)
    assert charts.count() >= 5
    for n in range(charts.count()):
        expect(charts.nth(n)).to_have_attribute("data-drawn", "true")
        box = charts.nth(n).bounding_box()
        assert box["width"] > 100 and box["height"] > 100
    table = page.locator('[data-insight="answer-time"] table')
    expect(table).to_be_hidden()
    page.locator('[data-insight="answer-time"] summary').click()
    expect(table).to_contain_text("3 min 17 s")
    assert problems + page.evaluate("window.__problems") == []
    page.goto(f"{live_server.url}/insights?since=2026-01-01&until=2026-01-07")
    expect(page.locator("[data-empty-range]")).to_contain_text("No requests in this range")
    assert page.locator("canvas").count() == 0


def test_the_reviewers_home_counts_a_new_request_without_a_reload(browser, live_server):
    app = live_server.app
    configure_pagerduty(app)
    requestor = create_user(app, "requestor", "hana@example.com", "Hana Helpdesk")
    user = create_user(app, "member", "uma@example.com", "Uma User", notify_pagerduty=True)
    reviewer = create_user(app, "reviewer", "rita@example.com", "Rita Reviewer")

    page, problems = watched_page(browser)
    sign_in(page, live_server, reviewer, "/")
    pending = page.locator('[data-figure="pending"]')
    expect(pending).to_contain_text("0 pending")
    expect(page.locator("[data-right-now]")).to_have_attribute("data-live", "true", timeout=LIVE)
    expect(page.locator("[data-live-indicator]")).to_have_text("Live")  # as the list has it
    send_request(app, requestor, user)
    expect(pending).to_contain_text("1 pending", timeout=LIVE)
    expect(pending).to_contain_text("Uma User")
    expect(pending.locator(".countdown")).to_contain_text("s left")
    assert problems + page.evaluate("window.__problems") == []


def test_a_first_run_home_and_invitation_read_well_light_and_dark(browser, live_server):
    """Issue 31: the checklist first with its progress, a channel retrying in amber, the live
    indicator, the banner at the wrong host; then the invitation's QR code and copy button.
    axe-core finds nothing serious on either page, light and dark (the same page, its colour
    scheme switched: dark mode changes only colours)."""
    app = live_server.app
    configure_pagerduty(app)
    with app.app_context():
        integration.record_outcome("pagerduty", success=False, retrying=True,
                                   error="HTTP 429: Too Many Requests")
        db.session.commit()
    admin = create_user(app, "admin", "ada@example.com", "Ada Admin", passkey=False)
    app.config["BASE_URL"] = live_server.url.replace("127.0.0.1", "localhost")
    page, problems = watched_page(browser)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    sign_in(page, live_server, admin, "/")
    expect(page.locator("[data-wrong-address]")).to_contain_text("passkeys work only at "
                                                                 "localhost")
    expect(page.locator("[data-progress]")).to_have_text("3 of 6")
    expect(page.locator('[data-figure="channels-retrying"]')).to_contain_text("retrying")
    expect(page.locator("[data-live-indicator]")).to_have_text("Live", timeout=LIVE)
    assert page.locator("[data-checklist]").bounding_box()["y"] < \
        page.locator("[data-right-now]").bounding_box()["y"]
    found = light_and_dark(page, "home")
    page.emulate_media(color_scheme="light")
    page.goto(f"{live_server.url}/settings/users")
    page.get_by_label("Email", exact=True).fill("new.person@example.com")
    page.get_by_label("Name", exact=True).fill("New Person")
    page.get_by_role("button", name="Invite user").click()
    expect(page.get_by_role("img", name="The invitation link as a QR code")).to_be_visible()
    page.get_by_role("button", name="Copy link").click()
    expect(page.locator("[data-copied]")).to_have_text("Copied.")
    link = page.locator("[data-enrolment-link]").inner_text()
    assert page.evaluate("navigator.clipboard.readText()") == link
    found.update(light_and_dark(page, "invitation"))
    assert found == {}
    assert problems + page.evaluate("window.__problems") == []


def light_and_dark(page, name):
    found = {}
    for scheme, rules in (("light", EVERY_RULE), ("dark", COLOUR_RULES)):
        page.emulate_media(color_scheme=scheme)
        assert page.evaluate("matchMedia('(prefers-color-scheme: dark)').matches") == (
            scheme == "dark")
        if violations := axe_violations(page, rules):
            found[f"{name} ({scheme})"] = violations
    return found
