"""A channel's settings page in Chromium: the test button sends what the form has, unsaved,
and its answer shows beside it; the webhook URL copies with one press; axe-core light and
dark with an answer shown."""
import pytest
from playwright.sync_api import expect

from tests.support.accounts import create_user
from tests.support.browser import COLOUR_RULES, LIVE, PHONE, axe_violations, signed_in
from tests.support.helpers import TEST_KEY

pytestmark = pytest.mark.browser


def test_the_test_answer_shows_beside_the_button_with_the_unsaved_key_kept_in_the_form(
        browser, live_server, fake_pagerduty):
    app = live_server.app
    admin = create_user(app, "admin", "ada@example.com", "Ada Admin")
    page = signed_in(browser, live_server, admin, "/settings/pagerduty")
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    key = page.get_by_label("Integration key")
    key.fill(TEST_KEY)
    button = page.get_by_role("button", name="Send test incident")
    button.click()
    answer = page.locator("#test-result [data-test-outcome]")
    expect(answer).to_contain_text("PagerDuty accepted the test incident", timeout=LIVE)
    expect(answer).to_contain_text("which are not saved")
    assert fake_pagerduty.accepted[-1]["routing_key"] == TEST_KEY
    expect(key).to_have_value(TEST_KEY)  # no reload: the form is as the admin left it
    expect(page.locator(".status-indicator")).to_have_attribute("data-state", "never")
    beside, below = button.bounding_box(), answer.bounding_box()
    assert abs(below["y"] - beside["y"]) < 100, "the answer is where the admin looks"
    assert problems(page, "light") == []
    page.get_by_role("button", name="Resolve the test incident").click()
    expect(page.locator("#test-result [data-test-outcome]")).to_contain_text(
        "PagerDuty accepted the resolve of the test incident", timeout=LIVE)
    assert fake_pagerduty.accepted[-1]["event_action"] == "resolve"
    assert fake_pagerduty.accepted[-1]["routing_key"] == TEST_KEY, "the key in the form"

    page.get_by_role("button", name="Copy").click()
    expect(page.locator("[data-copied]")).to_have_text("Copied.")
    assert page.evaluate("navigator.clipboard.readText()") == \
        page.locator("#webhook-url").inner_text()

    page.emulate_media(color_scheme="dark")
    assert problems(page, "dark", COLOUR_RULES) == []
    page.set_viewport_size(PHONE["viewport"])
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.context.close()


def problems(page, scheme, *rules):
    return [f"{scheme}: {p}" for p in axe_violations(page, *rules)]
