"""What the browser tests share: signing in through the page, and how long a live change may
take to show."""
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
