"""Pages for daily use, in Chromium: the answer page and the list on a phone, times in the
reader's zone, deliveries and lost connections shown live, and axe-core on every page as each
role, light and dark."""
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect
from sqlalchemy import select, update

from sendauth_dashboard.extensions import db
from sendauth_dashboard.models import Delivery, Transaction, utcnow
from sendauth_dashboard.runtime import runtime
from sendauth_dashboard.services.requests import transactions
from tests.support.accounts import create_user
from tests.support.browser import (
    COLOUR_RULES,
    EVERY_RULE,
    LIVE,
    PHONE,
    axe_violations,
    signed_in,
)
from tests.support.helpers import answer_token, configure_pagerduty, send_request

pytestmark = pytest.mark.browser


@pytest.fixture
def people(live_server):
    app = live_server.app
    configure_pagerduty(app)
    return {
        "member": create_user(app, "member", "uma@example.com", "Uma User",
                              notify_pagerduty=True),
        "requestor": create_user(app, "requestor", "hana@example.com", "Hana Helpdesk"),
        "reviewer": create_user(app, "reviewer", "rita@example.com", "Rita Reviewer"),
        "admin": create_user(app, "admin", "ada@example.com", "Ada Admin"),
    }


def cancel(app, public_id):
    with app.app_context():
        t = db.session.scalar(select(Transaction).where(Transaction.public_id == public_id))
        transactions.cancel(t, actor=t.requestor)
        db.session.commit()


def answer_path(app, fake_pagerduty, public_id):
    """The user's link: from the outbox, or, once the dispatcher has sent it (which clears it
    there), as PagerDuty received it."""
    token = answer_token(app, public_id)
    if token is None:
        fake_pagerduty.wait_for(lambda fake: any(d == public_id for _, d in fake.incidents))
        sent = next(body for (_, d), body in fake_pagerduty.incidents.items() if d == public_id)
        token = sent["links"][0]["href"].rsplit("/", 1)[1]
    return f"/authenticate/{token}"


def bottom(locator):
    box = locator.bounding_box()
    return box["y"] + box["height"]


def test_the_answer_page_fits_the_first_screen_of_a_390_by_844_phone(
        browser, live_server, people, fake_pagerduty):
    app = live_server.app
    message = ("Please confirm the MFA reset you asked for this morning. " * 6).strip()
    public_id = send_request(app, people["requestor"], people["member"], message=message,
                             context="Ticket #4521 " * 20)
    page = signed_in(browser, live_server, None,  # signed out: no password wall
                     answer_path(app, fake_pagerduty, public_id), **PHONE)
    who = page.get_by_role("heading", level=1)
    expect(who).to_have_text("Hana Helpdesk asks you to confirm it is you")
    verify = page.get_by_role("button", name="Yes, it is me: verify")
    deny = page.get_by_role("button", name="No, deny")
    code = page.locator("input.code-input")
    left = page.locator(".answer .countdown")
    expect(page.locator(".answer-for")).to_contain_text("For Uma User")
    assert page.locator("input[type=password]").count() == 0
    for piece in (who, left, code, verify, deny):
        expect(piece).to_be_visible()
        assert bottom(piece) <= 844, "on the first screen, without scrolling"
    for button in (verify, deny):
        box = button.bounding_box()
        assert box["height"] >= 48 and box["width"] >= 300, "a thumb-sized target"
    assert page.locator("nav").count() == 0, "no menu to wander into while answering"
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    # the details are there, below
    expect(page.locator(".facts")).to_contain_text("Ticket #4521")


def test_on_a_phone_the_first_request_shows_who_what_and_its_state_on_the_first_screen(
        browser, live_server, people):
    app = live_server.app
    for n in range(3):
        send_request(app, people["requestor"], people["member"],
                     message=f"Reset number {n}: please confirm")
    page = signed_in(browser, live_server, people["requestor"], "/transactions/", **PHONE)
    first = page.locator("table.transactions tbody tr").first
    expect(first).to_contain_text("Uma User")
    expect(first).to_contain_text("Reset number 2: please confirm")
    expect(first.locator('[data-field="status"]')).to_have_text("pending")
    expect(first.locator(".countdown")).to_contain_text("left")
    for cell in ("td.who", "td.message", "td.state"):
        expect(first.locator(cell)).to_be_visible()
    assert bottom(first) <= 844
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.goto(f"{live_server.url}/transactions/?status=pending&q=reset")
    expect(page.locator('.tabs [aria-current="page"]')).to_contain_text("Pending")
    assert bottom(page.locator("table.transactions tbody tr").first) <= 844


def test_times_show_in_the_readers_zone_with_utc_on_hover(browser, live_server, people):
    send_request(live_server.app, people["requestor"], people["member"])
    page = signed_in(browser, live_server, people["requestor"], "/transactions/",
                     timezone_id="Asia/Kathmandu", locale="en-GB")  # UTC+05:45
    sent = page.locator("td.sent time")
    expect(sent).to_have_attribute("title", re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$"))
    utc_text = sent.get_attribute("title")
    hours, minutes = int(utc_text[11:13]), int(utc_text[14:16])
    total = (hours * 60 + minutes + 5 * 60 + 45) % (24 * 60)
    expect(sent).to_contain_text(f"{total // 60:02d}:{total % 60:02d}")
    expect(sent).to_contain_text("just now")


def test_a_pages_times_stay_utc_without_script(browser, live_server, people):
    send_request(live_server.app, people["requestor"], people["member"])
    page = signed_in(browser, live_server, people["requestor"], "/transactions/",
                     java_script_enabled=False)
    expect(page.locator("td.sent time")).to_have_text(re.compile(r" UTC$"))


def test_the_deliveries_table_turns_accepted_live(browser, live_server, people, fake_pagerduty):
    from .fakes.pagerduty import Answer

    app = live_server.app
    app.config["DELIVERY_BACKOFF_BASE_SECONDS"] = 600.0  # the retry waits for the test
    fake_pagerduty.answer_next(Answer.server_error())
    page = signed_in(browser, live_server, people["requestor"], "/transactions/new")
    page.get_by_label("User's email").fill(people["member"].email)
    page.get_by_label("Message").fill("Please confirm the MFA reset")
    page.get_by_role("button", name="Send request").click()
    expect(page.locator("[data-live-indicator]")).to_have_attribute("data-state", "live",
                                                                    timeout=LIVE)
    row = page.locator('[data-deliveries] tr[data-channel="pagerduty"]')
    expect(row.locator('[data-cell="answer"]')).to_contain_text("HTTP 500", timeout=LIVE)
    expect(row).to_have_attribute("data-state", "queued")
    expect(row.locator('[data-cell="next_retry_at"] time')).to_be_visible()

    with app.app_context():  # the retry is due now
        db.session.execute(update(Delivery).values(next_attempt_at=utcnow()))
        db.session.commit()
    runtime(app).dispatcher.wake()
    expect(row).to_have_attribute("data-state", "sent", timeout=LIVE)
    expect(row.locator('[data-cell="attempts"]')).to_have_text("2")
    expect(row.locator('[data-cell="state_words"]')).to_have_text("Accepted")
    expect(row.locator('[data-cell="answer"]')).to_have_text(
        "PagerDuty accepted the notification (HTTP 202 Accepted)")
    sent_notice = page.locator(".flash-success")
    expect(sent_notice).to_contain_text("Request sent to Uma User")

    cancel(app, page.url.rsplit("/", 1)[1])
    expect(page.locator('[data-live-transaction] [data-field="status"]')).to_have_text(
        "cancelled", timeout=LIVE)
    expect(sent_notice).to_be_hidden()


def test_a_lost_connection_is_announced_and_rows_are_stale_until_it_is_back(
        browser, live_server, people):
    app = live_server.app
    public_id = send_request(app, people["requestor"], people["member"])
    page = signed_in(browser, live_server, people["reviewer"], "/transactions/")
    expect(page.locator("[data-live-indicator]")).to_have_attribute("data-state", "live",
                                                                    timeout=LIVE)
    page.route("**/transactions/stream*", lambda route: route.abort())
    runtime(app).broker.close_all()
    banner = page.locator("[data-connection-lost]")
    expect(banner).to_be_visible(timeout=LIVE)
    expect(banner).to_contain_text("Live updates are paused since")
    expect(page.locator("table.transactions")).to_have_class(re.compile(r"\bstale\b"))

    cancel(app, public_id)
    page.unroute("**/transactions/stream*")
    expect(banner).to_be_hidden(timeout=LIVE)
    expect(page.locator("table.transactions")).not_to_have_class(re.compile(r"\bstale\b"))
    expect(page.locator(f'tr[data-transaction-id="{public_id}"] [data-field="status"]')) \
        .to_have_text("cancelled")


def test_cancelling_asks_first_and_works_without_script(browser, live_server, people):
    public_id = send_request(live_server.app, people["requestor"], people["member"])
    page = signed_in(browser, live_server, people["requestor"], f"/transactions/{public_id}",
                     java_script_enabled=False)
    yes = page.get_by_role("button", name="Yes, cancel the request")
    expect(yes).to_be_hidden()
    page.get_by_text("Cancel this request…").click()
    yes.click()
    expect(page.locator(".flash-success")).to_contain_text("The request is cancelled.")


def luminance(rgb):
    def channel(value):
        value /= 255
        return value / 12.92 if value <= 0.03928 else ((value + 0.055) / 1.055) ** 2.4

    red, green, blue = (channel(v) for v in rgb)
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue


def contrast(one, other):
    lighter, darker = sorted((luminance(one), luminance(other)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def rgb(css):
    return tuple(int(v) for v in re.findall(r"\d+", css)[:3])


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_focus_ring_stands_out_and_a_skip_link_comes_first(browser, live_server, people,
                                                               scheme):
    page = signed_in(browser, live_server, people["requestor"], "/transactions/",
                     color_scheme=scheme)
    page.keyboard.press("Tab")
    expect(page.locator(".skip-link")).to_be_focused()
    expect(page.locator(".skip-link")).to_be_in_viewport()
    search = page.get_by_label("Search")
    search.focus()
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Tab")  # focused from the keyboard, as :focus-visible wants
    ring = page.evaluate("""() => {
        const el = document.activeElement, style = getComputedStyle(el);
        const card = getComputedStyle(el.closest('.card') || document.documentElement);
        return {color: style.outlineColor, width: style.outlineWidth,
                style: style.outlineStyle, behind: card.backgroundColor};
    }""")
    assert ring["style"] == "solid" and float(ring["width"].rstrip("px")) >= 2
    assert contrast(rgb(ring["color"]), rgb(ring["behind"])) >= 3


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_a_disabled_button_looks_disabled(browser, live_server, people, scheme):
    page = signed_in(browser, live_server, people["admin"], "/transactions/",
                     color_scheme=scheme)
    page.evaluate("""() => {
        const form = document.querySelector('form.filters .search-row');
        const off = document.createElement('button');
        off.className = 'button'; off.disabled = true; off.textContent = 'Off';
        const on = document.createElement('button');
        on.className = 'button'; on.textContent = 'On';
        form.append(off, on);
    }""")
    looks = page.evaluate("""() => [...document.querySelectorAll('.search-row .button')]
        .slice(-2).map(b => { const s = getComputedStyle(b);
            return [s.backgroundColor, s.color, s.cursor, s.borderStyle]; })""")
    (off_bg, off_text, off_cursor, off_border), (on_bg, _, on_cursor, _) = looks
    assert off_bg != on_bg and off_cursor == "not-allowed" and off_border == "dashed"
    assert contrast(rgb(off_text), rgb(off_bg)) >= 3  # still readable


# -- axe-core --------------------------------------------------------------------------------

# The pages each role works with; {transaction} and {answer} are filled in. Add a page here
# and it is checked as that role, light and dark.
# {ended} is the link of a request cancelled with a warning on it, {finished} its page.
PAGES = {
    "anonymous": ["/login", "{answer}", "{ended}"],
    "member": ["/", "/profile/messaging", "/profile/passkeys", "{answer}"],
    "requestor": ["/transactions/", "/transactions/?q=no+such+words", "/transactions/new",
                  "/transactions/{transaction}", "/transactions/{finished}",
                  "/profile/api-keys"],
    "reviewer": ["/transactions/", "/transactions/{transaction}", "/insights?days=7&tz=UTC",
                 "/insights?since=2026-01-01&until=2026-01-07&tz=UTC"],
    "admin": ["/", "/settings/users", "/settings/pagerduty", "/settings/email", "/settings/sms",
              "/settings/slack", "/settings/organisation", "/settings/api-keys",
              "/settings/webhooks", "/settings/messages", "/settings/routing",
              "/settings/sign-in", "/settings/approval-groups", "/api/docs"],
}


def test_dark_mode_changes_only_colours():
    css = (Path(__file__).resolve().parent.parent / "static" / "css" / "app.css").read_text()
    dark = css.split("@media (prefers-color-scheme: dark)", 1)[1].split("\n}\n", 1)[0]
    body = dark.strip().removeprefix("{").strip().removeprefix(":root {").strip()
    declarations = [d.strip() for d in body.rstrip("}").split(";") if d.strip()]
    assert declarations and all(d.startswith("--") for d in declarations), declarations


@pytest.mark.parametrize("role", list(PAGES))
def test_axe_core_finds_nothing_serious_on_any_page(browser, live_server, people, role,
                                                   fake_pagerduty):
    app = live_server.app
    public_id = send_request(app, people["requestor"], people["member"])
    finished = send_request(app, people["requestor"], people["member"], message="Another")
    places = {"transaction": public_id, "answer": answer_path(app, fake_pagerduty, public_id),
              "finished": finished, "ended": answer_path(app, fake_pagerduty, finished)}
    with app.app_context():
        db.session.execute(update(Transaction).where(Transaction.public_id == finished)
                           .values(risks=["wrong_code"]))
        db.session.commit()
    cancel(app, finished)
    found = {}
    for scheme in ("light", "dark"):
        page = signed_in(browser, live_server, people.get(role), "/login" if role == "anonymous"
                         else "/", color_scheme=scheme)
        for path in PAGES[role]:
            path = path.format(**places) if path.startswith("/") else places[path[1:-1]]
            page.goto(f"{live_server.url}{path}")
            page.wait_for_load_state()
            if problems := axe_violations(page, EVERY_RULE if scheme == "light"
                                          else COLOUR_RULES):
                found[f"{path} ({scheme})"] = problems
        page.context.close()
    assert found == {}


def test_the_sms_segment_count_follows_the_typing_on_a_phone_in_dark_mode(
        browser, live_server, people):
    """Settings → Messages: the preview (written by the server) changes as the SMS template is
    typed, and one character outside GSM-7 shows the whole text becoming UCS-2."""
    page = signed_in(browser, live_server, people["admin"], "/settings/messages",
                     color_scheme="dark", **PHONE)
    sms = page.get_by_label("SMS body")
    count = page.locator("[data-sms-segments]")
    sms.fill("Acme IT: is this you? {link}")
    expect(count).to_have_attribute("data-sms-encoding", "GSM-7")
    expect(count).to_contain_text("1 segment, GSM-7")
    sms.fill("Acme IT ✓ is this you? {link}")
    expect(count).to_have_attribute("data-sms-encoding", "UCS-2")
    expect(count).to_contain_text("2 segments, UCS-2")
    expect(page.locator("[data-preview=sms_body]")).to_contain_text("Acme IT ✓ is this you?")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, "nothing makes a phone scroll sideways"
    page.context.close()


DESK = {"viewport": {"width": 1440, "height": 900}}


def test_the_bar_the_users_table_and_the_list_fit_a_desk_and_a_phone(browser, live_server,
                                                                     people):
    app = live_server.app
    create_user(app, "member", "bartholomew.longname-smythe@example-corporation.com",
                "Bartholomew Longname-Smythe")
    for n in range(14):
        send_request(app, people["requestor"], people["member"],
                     message=f"Reset number {n}: please confirm the MFA reset you asked for "
                             "this morning, on the phone with the help desk, after the laptop",
                     context=f"Ticket #45{n:02d}: laptop replaced, new phone enrolled")
    page = signed_in(browser, live_server, people["admin"], "/settings/users", **DESK)
    table = page.locator("table.users")
    assert table.evaluate("t => t.scrollWidth <= t.parentElement.clientWidth"), \
        "every column of the users table at 1440 px, no horizontal scroll"
    assert page.evaluate("document.documentElement.scrollWidth") <= 1440
    who = page.locator(".person-menu summary")
    assert who.bounding_box()["height"] <= 40, "the name on one line"
    who.click()
    sign_out = page.get_by_role("button", name="Sign out")
    expect(sign_out).to_be_visible()
    assert sign_out.bounding_box()["height"] <= 40, "Sign out on one line"
    page.goto(f"{live_server.url}/transactions/")
    rows = page.locator("table.transactions tbody tr")
    expect(rows).to_have_count(14)
    heights = rows.evaluate_all("rs => rs.map(r => r.getBoundingClientRect().height)")
    assert max(heights) <= 48, "one line a request"
    assert sum(bottom(rows.nth(n)) <= 900 for n in range(14)) >= 10
    expect(page.locator('.tabs [data-status-tab="pending"] [data-count]')).to_have_text("14")
    send_request(app, people["requestor"], people["member"], message="One more, live")
    expect(rows).to_have_count(15, timeout=LIVE)
    expect(page.locator('.tabs [data-status-tab="pending"] [data-count]')).to_have_text("15")
    expect(page.locator('.tabs [data-status-tab="all"] [data-count]')).to_have_text("15")
    # The whole row opens it: a click on the message (read at once: live updates redraw rows).
    middle = page.locator("table.transactions").evaluate("""t => {
        const box = t.tBodies[0].rows[1].querySelector("td.message").getBoundingClientRect();
        return [box.x + box.width / 2, box.y + box.height / 2];
    }""")
    page.mouse.click(*middle)
    expect(page).to_have_url(re.compile(r"/transactions/[\w-]+$"))
    page.context.close()

    phone = signed_in(browser, live_server, people["admin"], "/settings/users", **PHONE)
    assert phone.locator("header.topbar").bounding_box()["height"] <= 56
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    settings = phone.locator(".work-nav").get_by_role("link", name="Settings")
    expect(settings).to_be_hidden()
    phone.get_by_role("button", name="Menu").click()
    expect(settings).to_be_visible()
    expect(phone.locator(".person-menu summary")).to_be_visible()
    phone.context.close()
