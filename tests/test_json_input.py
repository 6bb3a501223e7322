"""Every JSON we take in is read within bounds (core.json_input): nested 3,000 deep, larger than
any answer, or not JSON at all, each field and body is answered 400 with words, never a 500."""
import base64
import json

import pytest

from sendauth_dashboard.core import json_input
from sendauth_dashboard.extensions import db
from sendauth_dashboard.models import User
from sendauth_dashboard.services.people import enrolment
from tests.fakes.pagerduty import signature
from tests.support.helpers import (
    answer_token,
    configure_pagerduty,
    passkey_ids,
    send_request,
    verify_form,
)
from tests.support.web import AuthActions, csrf_token_from

DEEP = "[" * 3000
NOT_JSON = {
    "nested": DEEP,
    "nested in an object": '{"id": "x", "response": ' + '{"a": ' * 2000 + "1" + "}" * 2001,
    "huge": json.dumps({"id": "x", "response": {"pad": "x" * 17_000}}),
    "malformed": '{"id": "x", "response": {',
    "deep client data": json.dumps({"id": "x", "response": {
        "clientDataJSON": base64.urlsafe_b64encode(DEEP.encode()).decode().rstrip("=")}}),
}


def refused_in_words(response):
    return any(words in response.text for words in (
        "not readable", "No passkey answer arrived", "Prove it is you"))


def test_the_parser_refuses_deep_huge_and_malformed_text_in_words():
    assert json_input.parse('{"a": [1, "[[[["]}', max_chars=100) == {"a": [1, "[[[["]}
    cases = [(DEEP, 3000, "nests deeper than 32 levels"),
             ("x" * 101, 100, "at most 100 characters"),
             ("{", 100, "is not JSON"), (b"\xff", 100, "not UTF-8"),
             ("1" * 5000, 6000, "is not JSON")]  # past Python's 4,300 digits
    for text, max_chars, says in cases:
        with pytest.raises(json_input.JsonError, match=says):
            json_input.parse(text, max_chars=max_chars)


@pytest.fixture
def uma(app, make_user):
    return make_user("member", email="uma@example.com", name="Uma User")


def signed_in(app, user):
    auth = AuthActions(app.test_client())
    auth.login(user)
    return auth


def posted(auth, path, data, token_page):
    token = csrf_token_from(auth.client.get(token_page).text)
    return auth.client.post(path, data={"csrf_token": token, **data})


@pytest.mark.usefixtures("every_channel_offered")
@pytest.mark.parametrize("text", NOT_JSON.values(), ids=NOT_JSON.keys())
def test_passkey_fields_on_the_profile_pages_are_a_400(app, uma, text):
    auth = signed_in(app, uma)
    forms = [
        ("/profile/passkeys", {"name": "x", "credential": text, "proof": text},
         "/profile/passkeys"),
        ("/profile/passkeys", {"name": "x", "credential": "{}", "proof": text},
         "/profile/passkeys"),
        ("/profile/messaging", {"email": "y", "sms": "y", "phone": "+14155550100",
                                "proof": text}, "/profile/messaging"),
        ("/profile/password", {"current_password": "a test password, long enough",
                               "new_password": "plum kettle orbit sand",
                               "confirm": "plum kettle orbit sand", "proof": text},
         "/profile/password"),
    ]
    for path, data, token_page in forms:
        response = posted(auth, path, data, token_page)
        assert response.status_code == 400, (path, response.status_code)
        assert refused_in_words(response), path
    (passkey_id,) = passkey_ids(app, uma)
    removed = posted(auth, f"/profile/passkeys/{passkey_id}/remove", {"proof": text},
                     "/profile/passkeys")
    assert removed.status_code == 302
    assert "The passkey was not removed" in auth.client.get("/profile/passkeys").text
    assert passkey_ids(app, uma) == [passkey_id]


@pytest.mark.parametrize("text", NOT_JSON.values(), ids=NOT_JSON.keys())
def test_the_enrolment_link_signed_out_is_a_400(app, make_user, admin, text):
    nora = make_user("member", email="nora@example.com", passkey=False)
    with app.app_context():
        token = enrolment.issue(db.session.get(User, nora.id), actor=None, kind="invitation")
        db.session.commit()
    client = app.test_client()
    csrf = csrf_token_from(client.get(f"/enrol/{token}").text)
    response = client.post(f"/enrol/{token}", data={
        "csrf_token": csrf, "password": "plum kettle orbit sand",
        "confirm": "plum kettle orbit sand", "credential": text})
    assert response.status_code == 400
    assert passkey_ids(app, nora) == []


@pytest.mark.parametrize("text", NOT_JSON.values(), ids=NOT_JSON.keys())
def test_the_answer_pages_credential_is_a_400(app, make_user, uma, text):
    configure_pagerduty(app)
    requestor = make_user("requestor")
    with app.app_context():
        db.session.get(User, uma.id).notify_pagerduty = True
        db.session.commit()
    public_id = send_request(app, requestor, uma)
    token = answer_token(app, public_id)
    auth = signed_in(app, uma)
    form = verify_form(app, auth.client, token, uma)
    response = auth.client.post(f"/authenticate/{token}", data={**form, "credential": text})
    assert response.status_code == 400
    assert refused_in_words(response)


@pytest.mark.parametrize("text", NOT_JSON.values(), ids=NOT_JSON.keys())
def test_a_signed_pagerduty_webhook_that_is_not_json_within_bounds_is_a_400(app, text):
    configure_pagerduty(app, webhook_secret="whsec-for-this-test-only")
    raw = text.encode()
    response = app.test_client().post("/webhooks/pagerduty", data=raw, headers={
        "Content-Type": "application/json",
        "X-PagerDuty-Signature": signature("whsec-for-this-test-only", raw)})
    assert response.status_code == 400
    assert "The body" in response.text or "event" in response.text
