"""A test client used the way a browser is: forms posted with their CSRF token."""
import re

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
