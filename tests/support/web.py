"""A test client used the way a browser is: forms posted with their CSRF token."""
import re
from html.parser import HTMLParser

from .accounts import PASSWORD

CSRF_RE = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"|'
                     r'type="hidden" name="csrf_token" value="([^"]+)"')


def csrf_token_from(html):
    match = CSRF_RE.search(html)
    assert match, "no csrf_token in the page"
    return match.group(1) or match.group(2)


class AuthActions:
    def __init__(self, client):
        self.client = client

    def login(self, user_or_email, password=PASSWORD, next_url=None):
        email = getattr(user_or_email, "email", user_or_email)
        page = self.client.get("/login")
        url = "/login" if next_url is None else f"/login?next={next_url}"
        return self.client.post(url, data={
            "email": email, "password": password, "csrf_token": csrf_token_from(page.text),
        })

    def logout(self):
        return self.client.post("/logout", data={"csrf_token": self.csrf_token()})

    def csrf_token(self, page="/"):
        return csrf_token_from(self.client.get(page).text)

    def post(self, url, data=None, token_page="/", **kwargs):
        """POST a form the way a browser does: with the session's CSRF token read from a page."""
        form = {"csrf_token": self.csrf_token(token_page)}
        form.update(data or {})
        return self.client.post(url, data=form, **kwargs)


class _Text(HTMLParser):
    def __init__(self):
        super().__init__()
        self.pieces, self._skipping = [], 0

    def handle_starttag(self, tag, attrs):
        self._skipping += tag in ("script", "style")

    def handle_endtag(self, tag):
        self._skipping -= tag in ("script", "style")

    def handle_data(self, data):
        if not self._skipping:
            self.pieces.append(data)


def words_shown(html):
    """The words (runs of letters and digits) of a page's text as a reader sees it: no markup,
    scripts or attributes. To say a short value (a three-digit code) is not shown, look for it
    among these, not in the page's source, where it may be part of a date or an id."""
    parser = _Text()
    parser.feed(html)
    return set(re.findall(r"\w+", " ".join(parser.pieces)))


def passkey_sign_in_form(client, authenticator):
    """What the sign-in page's script posts: an assertion for a challenge the page asked for."""
    import json

    csrf = csrf_token_from(client.get("/login").text)
    options = client.post("/login/passkey-options", headers={"X-CSRFToken": csrf})
    assert options.status_code == 200, options.text
    assert "allowCredentials" not in options.get_json() or not options.get_json()[
        "allowCredentials"], "discoverable: the page names no one"
    return {"csrf_token": csrf, "credential": json.dumps(authenticator.get(options.get_json()))}
