"""Passkeys: registering and removing them on /profile/passkeys, and verifying a request with
one, with real WebAuthn data from a software authenticator (tests/authenticator.py)."""
import base64
import json
import re
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update

from sendauth_dashboard.extensions import db
from sendauth_dashboard.models import Event, Passkey, PasskeyChallenge, Transaction, User, utcnow
from sendauth_dashboard.services.live import words
from sendauth_dashboard.services.people import passkeys
from tests.support.authenticator import SoftAuthenticator
from tests.support.helpers import (
    answer_token,
    binding_code,
    configure_pagerduty,
    database_rows,
    passkey_ids,
    send_request,
    verify_form,
)
from tests.support.web import csrf_token_from, words_shown

ORIGIN = "http://sendauth.test"  # BASE_URL in tests


# -- registering ------------------------------------------------------------------------------

def proof_for(client, user, csrf):
    """A fresh assertion with ``user``'s passkey, for a challenge made to prove it is them."""
    response = client.post("/profile/proof-options", headers={"X-CSRFToken": csrf})
    assert response.status_code == 200, response.text
    return json.dumps(user.authenticator.get(response.get_json()))


def registration_options(client, user=None):
    """(csrf, creation options, proof): what the passkeys page's script gathers."""
    csrf = csrf_token_from(client.get("/profile/passkeys").text)
    proof = proof_for(client, user, csrf) if user is not None else ""
    response = client.post("/profile/passkeys/options", headers={"X-CSRFToken": csrf})
    assert response.status_code == 200, response.text
    return csrf, response.get_json(), proof


def register(client, user, authenticator, name="Work laptop", **create_options):
    csrf, options, proof = registration_options(client, user)
    credential = authenticator.create(options, **create_options)
    return client.post("/profile/passkeys", data={
        "csrf_token": csrf, "name": name, "credential": json.dumps(credential), "proof": proof})


def passkeys_of(app, user):
    with app.app_context():
        return [(p.name, p.sign_count, p.last_used_at is not None) for p in db.session.scalars(
            select(Passkey).where(Passkey.user_id == user.id).order_by(Passkey.id))]


def event_kinds(app, transaction_id=None):
    with app.app_context():
        query = select(Event.kind).order_by(Event.id)
        if transaction_id is not None:
            query = query.where(Event.transaction_id == transaction_id)
        return db.session.scalars(query).all()


@pytest.fixture
def newcomer(make_user, auth):
    """A signed-in member without a passkey yet."""
    user = make_user("member", name="Nina Newcomer", passkey=False)
    auth.login(user)
    return user


@pytest.fixture
def owner(make_user, auth):
    """A signed-in member with one passkey ("Test passkey", its authenticator on the record)."""
    user = make_user("member", name="Olive Owner")
    auth.login(user)
    return user


def test_registration_options_require_user_verification_and_name_the_dashboard(client, owner):
    _, options, _ = registration_options(client, owner)
    assert options["rp"] == {"id": "sendauth.test", "name": "SendAuth"}
    assert options["authenticatorSelection"]["userVerification"] == "required"
    assert options["user"]["name"] == owner.email
    assert options["attestation"] == "none"
    assert [c["id"] for c in options["excludeCredentials"]] == [owner.authenticator.id]
    assert len(base64.urlsafe_b64decode(options["challenge"] + "==")) == 32


def test_a_user_adds_a_named_passkey_with_the_one_they_have(app, client, owner):
    response = register(client, owner, SoftAuthenticator(ORIGIN))
    assert response.status_code == 302
    page = client.get("/profile/passkeys").text
    assert "Your passkey &#39;Work laptop&#39; is registered" in page
    assert "Work laptop" in page and "Never" in page
    assert passkeys_of(app, owner) == [("Test passkey", 1, True), ("Work laptop", 0, False)]
    assert event_kinds(app)[-1] == "passkey.registered"


def test_a_passkey_without_a_name_gets_a_numbered_one(app, client, owner):
    register(client, owner, SoftAuthenticator(ORIGIN), name="")
    register(client, owner, SoftAuthenticator(ORIGIN), name="   ")
    assert [name for name, *_ in passkeys_of(app, owner)] == [
        "Test passkey", "Passkey 2", "Passkey 3"]


def test_the_password_alone_cannot_add_a_passkey(app, client, owner):
    """Signed in with only the password: no proof, or a proof that is not a fresh assertion
    with one of the user's own passkeys, adds nothing."""
    csrf, options, _ = registration_options(client)
    credential = json.dumps(SoftAuthenticator(ORIGIN).create(options))
    before = passkeys_of(app, owner)
    for proof, message in (("", "Prove it is you with one of your passkeys first"),
                           ("{", "not readable")):
        response = client.post("/profile/passkeys", data={
            "csrf_token": csrf, "name": "Mine now", "credential": credential, "proof": proof})
        assert response.status_code == 400
        assert message in response.text
    assert passkeys_of(app, owner) == before


def test_a_proof_from_someone_elses_passkey_is_refused(app, client, owner, make_user):
    stranger = make_user("member")
    csrf, options, proof = registration_options(client, owner)
    challenge = json.loads(base64.urlsafe_b64decode(
        json.loads(proof)["response"]["clientDataJSON"] + "=="))["challenge"]
    foreign = json.dumps(stranger.authenticator.get({"challenge": challenge}))
    response = client.post("/profile/passkeys", data={
        "csrf_token": csrf, "name": "x", "proof": foreign,
        "credential": json.dumps(SoftAuthenticator(ORIGIN).create(options))})
    assert response.status_code == 400
    assert "This passkey belongs to someone else" in response.text
    assert len(passkeys_of(app, owner)) == 1


def test_a_proof_counts_once(app, client, owner):
    csrf, options, proof = registration_options(client, owner)
    first = client.post("/profile/passkeys", data={
        "csrf_token": csrf, "name": "One", "proof": proof,
        "credential": json.dumps(SoftAuthenticator(ORIGIN).create(options))})
    assert first.status_code == 302
    _, options, _ = registration_options(client, owner)
    again = client.post("/profile/passkeys", data={
        "csrf_token": csrf, "name": "Two", "proof": proof,
        "credential": json.dumps(SoftAuthenticator(ORIGIN).create(options))})
    assert again.status_code == 400
    assert "This proof with your passkey has expired or was already used" in again.text
    assert [name for name, *_ in passkeys_of(app, owner)] == ["Test passkey", "One"]


def test_a_verification_challenge_does_not_prove_it_is_you(app, client, owner, make_user):
    """Each challenge is for one purpose: an assertion made to answer a request cannot stand
    in for the proof that adds a passkey."""
    configure_pagerduty(app)
    requestor = make_user("requestor")
    with app.app_context():
        db.session.execute(update(User).where(User.id == owner.id).values(notify_pagerduty=True))
        db.session.commit()
    token = answer_token(app, send_request(app, requestor, owner))
    answer = verify_form(app, client, token, owner)
    csrf, options, _ = registration_options(client)
    response = client.post("/profile/passkeys", data={
        "csrf_token": csrf, "name": "x", "proof": answer["credential"],
        "credential": json.dumps(SoftAuthenticator(ORIGIN).create(options))})
    assert response.status_code == 400
    assert "not asked for by this page" in response.text
    assert len(passkeys_of(app, owner)) == 1


def test_without_a_passkey_the_profile_points_to_an_enrolment_link(app, client, newcomer):
    page = client.get("/profile/passkeys").text
    assert "data-needs-enrolment" in page and "data-passkey-register" not in page
    csrf = csrf_token_from(page)
    response = client.post("/profile/passkeys/options", headers={"X-CSRFToken": csrf})
    assert response.status_code == 400
    assert "enrolment link" in response.get_json()["error"]
    with app.app_context():
        assert db.session.scalar(select(PasskeyChallenge)) is None
    authenticator = SoftAuthenticator(ORIGIN)
    with app.app_context():
        options = passkeys.registration_options(db.session.get(User, newcomer.id))
        db.session.commit()
    response = client.post("/profile/passkeys", data={
        "csrf_token": csrf, "name": "x", "credential": json.dumps(authenticator.create(options))})
    assert response.status_code == 400
    assert "Your first passkey is registered through an enrolment link" in response.text
    assert passkeys_of(app, newcomer) == []


@pytest.mark.parametrize("case, authenticator, create_options, message", [
    ("no user verification", SoftAuthenticator(ORIGIN, user_verified=False), {},
     "User verification is required"),
    ("another site", SoftAuthenticator("https://evil.example"), {"origin": "https://evil.example"},
     "origin"),
    ("another relying party", SoftAuthenticator(ORIGIN, rp_id="evil.example"), {},
     "RP ID"),
])
def test_a_registration_that_does_not_hold_up_is_refused(app, client, owner, case,
                                                         authenticator, create_options, message):
    response = register(client, owner, authenticator, **create_options)
    assert response.status_code == 400, case
    assert message.lower() in response.text.lower(), case
    assert len(passkeys_of(app, owner)) == 1


def test_a_registration_answer_counts_once(app, client, owner):
    """The challenge is kept on the server and used once: posting the same answer again (a
    replayed form, or a cookie from before the registration) registers nothing."""
    csrf, options, proof = registration_options(client, owner)
    credential = json.dumps(SoftAuthenticator(ORIGIN).create(options))
    form = {"csrf_token": csrf, "name": "Laptop", "credential": credential, "proof": proof}
    assert client.post("/profile/passkeys", data=form).status_code == 302
    _, _, fresh_proof = registration_options(client, owner)
    again = client.post("/profile/passkeys", data={**form, "proof": fresh_proof})
    assert again.status_code == 400
    assert "This registration has expired or was already used" in again.text
    assert len(passkeys_of(app, owner)) == 2


def test_a_cookie_from_before_a_registration_registers_nothing_more(app, client, owner):
    """Issue 14, item 9: the challenge once lived in the session cookie, so replaying the
    cookie from before a registration registered a second passkey on the same challenge."""
    csrf, options, proof = registration_options(client, owner)
    cookie = client.get_cookie("session").value
    first, second = (json.dumps(SoftAuthenticator(ORIGIN).create(options)) for _ in range(2))
    assert client.post("/profile/passkeys", data={
        "csrf_token": csrf, "name": "One", "credential": first, "proof": proof}).status_code == 302
    client.set_cookie("session", cookie)
    _, _, fresh_proof = registration_options(client, owner)
    again = client.post("/profile/passkeys", data={
        "csrf_token": csrf, "name": "Two", "credential": second, "proof": fresh_proof})
    assert again.status_code == 400
    assert "This registration has expired or was already used" in again.text
    assert [name for name, *_ in passkeys_of(app, owner)] == ["Test passkey", "One"]


def test_a_registration_challenge_expires(app, client, owner):
    csrf, options, proof = registration_options(client, owner)
    with app.app_context():
        db.session.execute(update(PasskeyChallenge).where(PasskeyChallenge.purpose == "register")
                           .values(expires_at=utcnow()))
        db.session.commit()
    response = client.post("/profile/passkeys", data={
        "csrf_token": csrf, "name": "Late", "proof": proof,
        "credential": json.dumps(SoftAuthenticator(ORIGIN).create(options))})
    assert response.status_code == 400
    assert "This registration has expired or was already used" in response.text
    assert len(passkeys_of(app, owner)) == 1


def test_the_same_passkey_cannot_be_registered_twice(app, client, owner):
    authenticator = SoftAuthenticator(ORIGIN)
    register(client, owner, authenticator)
    response = register(client, owner, authenticator, name="Again")
    assert response.status_code == 400
    assert "This passkey is already registered" in response.text
    assert len(passkeys_of(app, owner)) == 2


def test_removing_a_passkey_is_recorded_and_only_the_owner_may(app, client, auth, make_user):
    owner = make_user("member", name="Olive Owner")
    other = make_user("member")
    (passkey_id,) = passkey_ids(app, owner)
    auth.login(other)
    before = database_rows(app)
    assert auth.post(f"/profile/passkeys/{passkey_id}/remove").status_code == 404
    assert database_rows(app) == before
    auth.logout()
    auth.login(owner)
    response = remove_passkey(auth, owner, passkey_id)
    assert response.status_code == 302
    assert "The passkey is removed" in client.get("/profile/passkeys").text
    assert passkey_ids(app, owner) == []
    assert event_kinds(app)[-1] == "passkey.removed"


def remove_passkey(auth, user, passkey_id, proof=None):
    """Post the passkey's Remove form as its page's script does: with a fresh proof."""
    if proof is None:
        proof = proof_for(auth.client, user, auth.csrf_token("/profile/passkeys"))
    return auth.post(f"/profile/passkeys/{passkey_id}/remove", {"proof": proof})


def test_the_password_alone_cannot_remove_a_passkey(app, client, auth, owner):
    """Else someone with the password could remove every passkey, then verify with the
    password where the organisation allows it."""
    (passkey_id,) = passkey_ids(app, owner)
    response = remove_passkey(auth, owner, passkey_id, proof="")
    assert response.status_code == 302
    assert "The passkey was not removed: Prove it is you" in client.get("/profile/passkeys").text
    assert passkey_ids(app, owner) == [passkey_id]


# Anything a browser (or someone pretending to be one) may post as the credential.
MALFORMED = ["", "{", "[]", "null", "42", '{"id": 5}', '{"id": "x", "response": []}',
             '{"id": "x", "response": {}}', '{"id": "x", "response": {"clientDataJSON": "!!"}}',
             '{"id": "x", "rawId": "x", "type": "public-key", "response": '
             '{"clientDataJSON": "e30", "attestationObject": "oA", "authenticatorData": "AA",'
             ' "signature": "AA"}}',
             "x" * 20_000]


@pytest.mark.parametrize("credential", MALFORMED)
def test_a_malformed_registration_is_a_400_not_a_500(app, client, owner, credential):
    csrf, _, proof = registration_options(client, owner)
    response = client.post("/profile/passkeys", data={"csrf_token": csrf, "name": "x",
                                                      "credential": credential, "proof": proof})
    assert response.status_code == 400
    assert "could not be registered" in response.text or "not readable" in response.text \
        or "No passkey answer" in response.text
    assert len(passkeys_of(app, owner)) == 1


# -- verifying a request with a passkey -------------------------------------------------------

@pytest.fixture
def sent(app, make_user, auth):
    """A pending request from Hana to Uma, Uma signed in: (requestor, user, public id, token)."""
    configure_pagerduty(app)
    requestor = make_user("requestor", name="Hana Helpdesk")
    user = make_user("member", name="Uma User", notify_pagerduty=True)
    public_id = send_request(app, requestor, user)
    auth.login(user)
    return requestor, user, public_id, answer_token(app, public_id)


def state_of(app, public_id):
    with app.app_context():
        t = db.session.scalar(select(Transaction).where(Transaction.public_id == public_id))
        return t.status, t.completed_at


def transaction_id(app, public_id):
    with app.app_context():
        return db.session.scalar(select(Transaction.id).where(Transaction.public_id == public_id))


def test_verifying_with_a_passkey_updates_its_count_and_is_recorded(app, client, sent):
    _, user, public_id, token = sent
    response = client.post(f"/authenticate/{token}", data=verify_form(app, client, token, user))
    assert response.status_code == 200
    assert "You verified the request" in response.text
    assert state_of(app, public_id)[0] == "verified"
    assert passkeys_of(app, user) == [("Test passkey", 1, True)]
    kinds = event_kinds(app, transaction_id(app, public_id))
    assert kinds[-2:] == ["passkey.used", "transaction.verified"]
    with app.app_context():
        verified = db.session.scalar(select(Event).where(Event.kind == "transaction.verified"))
        assert verified.data["proof"] == "passkey"


def test_the_options_ask_for_this_users_passkeys_with_a_challenge_bound_to_the_request(
        app, client, sent):
    _, user, public_id, token = sent
    csrf = csrf_token_from(client.get(f"/authenticate/{token}").text)
    options = client.post(f"/authenticate/{token}/passkey-options",
                          headers={"X-CSRFToken": csrf}).get_json()
    assert options["userVerification"] == "required"
    assert options["rpId"] == "sendauth.test"
    assert [c["id"] for c in options["allowCredentials"]] == [user.authenticator.id]
    with app.app_context():
        challenge = db.session.scalar(select(PasskeyChallenge).where(
            PasskeyChallenge.purpose == "verify"))
        assert challenge.challenge == options["challenge"]
        assert challenge.transaction_id == transaction_id(app, public_id)
        assert challenge.used_at is None


def tamper_signature(credential):
    signature = bytearray(base64.urlsafe_b64decode(credential["response"]["signature"] + "=="))
    signature[-1] ^= 0x01
    credential["response"]["signature"] = base64.urlsafe_b64encode(signature).rstrip(b"=").decode()
    return credential


def refused(app, client, token, public_id, form, message):
    """Post ``form``; it must be refused with ``message`` and leave the request pending."""
    before = state_of(app, public_id)
    response = client.post(f"/authenticate/{token}", data=form)
    assert response.status_code == 400, response.text[:500]
    assert message in response.text
    assert state_of(app, public_id) == before
    assert before[0] == "pending"
    assert event_kinds(app, transaction_id(app, public_id))[-1] == "verification.refused"
    return response


def with_credential(form, credential):
    return {**form, "credential": json.dumps(credential)}


def test_a_forged_signature_is_refused(app, client, sent):
    _, user, public_id, token = sent
    form = verify_form(app, client, token, user)
    forged = tamper_signature(json.loads(form["credential"]))
    refused(app, client, token, public_id, with_credential(form, forged),
            "The passkey&#39;s answer was refused")
    assert passkeys_of(app, user) == [("Test passkey", 0, False)]


def test_an_assertion_is_used_once(app, client, sent):
    """The same answer posted twice: the challenge it signed is used up the first time."""
    _, user, public_id, token = sent
    form = verify_form(app, client, token, user)
    with app.app_context():
        t = db.session.scalar(select(Transaction).where(Transaction.public_id == public_id))
        passkeys.check_assertion(t, db.session.get(User, user.id), form["credential"])
        db.session.commit()
    refused(app, client, token, public_id, form, "This passkey answer was already used")


def test_a_cloned_authenticator_with_an_old_counter_is_refused(app, client, sent):
    _, user, public_id, token = sent
    assert client.post(f"/authenticate/{token}", data=verify_form(
        app, client, token, user)).status_code == 200
    requestor = sent[0]
    second = send_request(app, requestor, user)
    token = answer_token(app, second)
    user.authenticator.sign_count = 0  # its clone has not counted the first use
    refused(app, client, token, second, verify_form(app, client, token, user),
            "sign count")


def test_another_users_passkey_is_refused(app, client, sent, make_user):
    _, user, public_id, token = sent
    stranger = make_user("member")
    form = verify_form(app, client, token, user)
    challenge = json.loads(base64.urlsafe_b64decode(
        json.loads(form["credential"])["response"]["clientDataJSON"] + "=="))["challenge"]
    foreign = stranger.authenticator.get({"challenge": challenge})
    refused(app, client, token, public_id, with_credential(form, foreign),
            "This passkey belongs to someone else")


def test_a_challenge_from_another_request_is_refused(app, client, sent):
    requestor, user, public_id, token = sent
    other_token = answer_token(app, send_request(app, requestor, user, message="another"))
    for_other = json.loads(verify_form(app, client, other_token, user)["credential"])
    form = verify_form(app, client, token, user)
    refused(app, client, token, public_id, with_credential(form, for_other),
            "This passkey answer was made for a different request")


def test_an_answer_made_for_another_site_is_refused(app, client, sent):
    _, user, public_id, token = sent
    form = verify_form(app, client, token, user)
    challenge = json.loads(base64.urlsafe_b64decode(
        json.loads(form["credential"])["response"]["clientDataJSON"] + "=="))["challenge"]
    phished = user.authenticator.get({"challenge": challenge}, origin="https://sendauth.evil")
    refused(app, client, token, public_id, with_credential(form, phished), "origin")


def test_a_removed_passkey_no_longer_verifies(app, client, auth, sent, make_user):
    _, user, public_id, token = sent
    with app.app_context():
        db.session.add(Passkey(user_id=user.id, credential_id="c3BhcmUta2V5", public_key=b"x",
                               name="Spare"))
        db.session.commit()
    form = verify_form(app, client, token, user)
    first = passkey_ids(app, user)[0]
    assert remove_passkey(auth, user, first).status_code == 302
    assert passkey_ids(app, user) != [] and first not in passkey_ids(app, user)
    refused(app, client, token, public_id, form, "This passkey is not registered")


def test_an_expired_challenge_is_refused(app, client, sent):
    _, user, public_id, token = sent
    form = verify_form(app, client, token, user)
    with app.app_context():
        db.session.execute(update(PasskeyChallenge).values(expires_at=utcnow()))
        db.session.commit()
    refused(app, client, token, public_id, form, "already used or has expired")


def test_verify_without_a_passkey_answer_is_refused(app, client, sent):
    _, user, public_id, token = sent
    form = verify_form(app, client, token, user)
    del form["credential"]
    refused(app, client, token, public_id, form, "No passkey answer arrived")


@pytest.mark.parametrize("credential", MALFORMED)
def test_a_malformed_answer_is_a_400_not_a_500(app, client, sent, credential):
    _, user, public_id, token = sent
    form = {**verify_form(app, client, token, user), "credential": credential}
    response = client.post(f"/authenticate/{token}", data=form)
    assert response.status_code == 400
    assert state_of(app, public_id)[0] == "pending"


def test_denying_needs_neither_code_nor_passkey(app, client, auth, sent):
    _, _, public_id, token = sent
    response = auth.post(f"/authenticate/{token}", {"decision": "deny"},
                         token_page=f"/authenticate/{token}")
    assert response.status_code == 200
    assert state_of(app, public_id)[0] == "denied"


def test_passkey_options_for_someone_elses_request_are_refused(app, client, auth, sent,
                                                               make_user):
    _, _, _, token = sent
    auth.logout()
    auth.login(make_user("member"))
    csrf = auth.csrf_token()
    response = client.post(f"/authenticate/{token}/passkey-options", headers={"X-CSRFToken": csrf})
    assert response.status_code == 403
    with app.app_context():
        assert db.session.scalar(select(PasskeyChallenge).where(
            PasskeyChallenge.purpose == "verify")) is None


# -- the call-binding code --------------------------------------------------------------------

def test_the_requestor_sees_a_three_digit_code_and_the_user_types_it(app, client, auth, sent):
    requestor, _, public_id, token = sent
    code = binding_code(app, token)
    assert len(code) == 3 and code.isdigit()
    page = client.get(f"/authenticate/{token}").text
    assert 'name="code"' in page and 'type="radio"' not in page
    # The user is not shown the code they must type: no element holds it, the field is empty,
    # and it is no word of the page's text (its digits may well be part of a date).
    assert "data-binding-code" not in page
    assert re.search(r'<input[^>]*name="code"[^>]*\bvalue=', page) is None
    assert code not in words_shown(page)
    auth.logout()
    auth.login(requestor)
    assert f"data-binding-code>{code}<" in client.get(f"/transactions/{public_id}").text


def wrong_code(app, token):
    return f"{(int(binding_code(app, token)) + 1) % 1000:03d}"


def test_one_wrong_code_denies_the_request_and_both_pages_say_so(app, client, auth, sent):
    requestor, user, public_id, token = sent
    response = client.post(f"/authenticate/{token}", data=verify_form(
        app, client, token, user, code=wrong_code(app, token)))
    assert response.status_code == 200
    assert "The code you typed is not the one for this request" in response.text
    status, completed_at = state_of(app, public_id)
    assert status == "denied" and completed_at is not None
    assert event_kinds(app, transaction_id(app, public_id))[-1] == "transaction.denied"
    assert passkeys_of(app, user) == [("Test passkey", 0, False)]
    auth.logout()
    auth.login(requestor)
    page = client.get(f"/transactions/{public_id}").text
    assert "Denied: Uma User entered a wrong code" in page
    assert "a wrong code was entered for this request" in page
    listing = client.get("/transactions/").text
    assert "Check: a wrong code was entered for this request" in listing


def test_the_right_code_after_a_wrong_one_finds_the_request_denied(app, client, sent):
    _, user, public_id, token = sent
    client.post(f"/authenticate/{token}", data=verify_form(
        app, client, token, user, code=wrong_code(app, token)))
    assert client.get(f"/authenticate/{token}").status_code == 410
    assert state_of(app, public_id)[0] == "denied"


@pytest.mark.parametrize("code", [None, "", "12", "1234", "abc", "１２３", "1 2"])
def test_what_is_not_a_three_digit_code_is_refused_and_not_counted(app, client, sent, code):
    _, user, public_id, token = sent
    form = verify_form(app, client, token, user)
    form["code"] = code
    if code is None:
        del form["code"]
    response = client.post(f"/authenticate/{token}", data=form)
    assert response.status_code == 400
    assert "Type the 3-digit code Hana Helpdesk reads to you" in response.text
    assert state_of(app, public_id) == ("pending", None)


def test_the_code_may_be_typed_with_spaces_around_it(app, client, sent):
    _, user, public_id, token = sent
    form = verify_form(app, client, token, user)
    form["code"] = f" {form['code']} "
    assert client.post(f"/authenticate/{token}", data=form).status_code == 200
    assert state_of(app, public_id)[0] == "verified"


# -- the organisation's setting: "Require a passkey to verify" --------------------------------

def require_passkey(app, on):
    from sendauth_dashboard.services.reports import organisation

    with app.app_context():
        organisation.update(require_passkey=on, actor=None)
        db.session.commit()


def require_passkey_box(page):
    (tag,) = re.findall(r'<input[^>]*name="require_passkey"[^>]*>', page)
    return "checked" if re.search(r"\schecked[\s>]", tag) else "unchecked"


def test_a_request_to_someone_without_a_passkey_is_refused_and_nothing_written(
        app, client, auth, make_user):
    configure_pagerduty(app)
    requestor = make_user("requestor")
    make_user("member", email="nopass@example.com", name="Noel Nopass", passkey=False,
              notify_pagerduty=True)
    auth.login(requestor)
    before = database_rows(app)
    response = auth.post("/transactions/new", {"user": "nopass@example.com",
                                               "message": "Please confirm"})
    assert response.status_code == 400
    assert "Noel Nopass has no passkey yet, and your organisation requires one" in response.text
    assert database_rows(app) == before


def test_the_setting_is_on_until_an_admin_turns_it_off_and_reading_it_writes_nothing(
        app, client, as_admin):
    before = database_rows(app)
    assert require_passkey_box(client.get("/settings/organisation").text) == "checked"
    assert database_rows(app) == before
    response = as_admin.post("/settings/organisation", {}, token_page="/settings/organisation")
    assert response.status_code == 302
    assert "users without a passkey verify with their password" in client.get("/").text
    assert require_passkey_box(client.get("/settings/organisation").text) == "unchecked"
    assert event_kinds(app)[-1] == "settings.organisation_changed"


@pytest.fixture
def passwordless(app, make_user, auth):
    """The setting off, and a pending request to Noel, who has no passkey, signed in."""
    require_passkey(app, False)
    configure_pagerduty(app)
    requestor = make_user("requestor")
    user = make_user("member", name="Noel Nopass", passkey=False, notify_pagerduty=True)
    public_id = send_request(app, requestor, user)
    auth.login(user)
    return user, public_id, answer_token(app, public_id)


def password_form(app, client, token, password):
    csrf = csrf_token_from(client.get(f"/authenticate/{token}").text)
    return {"csrf_token": csrf, "decision": "verify", "code": binding_code(app, token),
            "password": password}


def test_with_the_setting_off_a_user_without_a_passkey_verifies_with_the_password(
        app, client, passwordless):
    from tests.support.accounts import PASSWORD

    user, public_id, token = passwordless
    page = client.get(f"/authenticate/{token}").text
    assert 'name="password"' in page and "data-passkey-options-url" not in page
    response = client.post(f"/authenticate/{token}",
                           data=password_form(app, client, token, PASSWORD))
    assert response.status_code == 200
    assert state_of(app, public_id)[0] == "verified"
    with app.app_context():
        verified = db.session.scalar(select(Event).where(Event.kind == "transaction.verified"))
        assert verified.data["proof"] == "password"


@pytest.mark.parametrize("password, message", [
    ("", "Enter your password to verify"),
    ("not my password at all", "That is not your password"),
    ("x" * 5000, "That is not your password"),
])
def test_a_wrong_password_is_refused(app, client, passwordless, password, message):
    _, public_id, token = passwordless
    refused(app, client, token, public_id, password_form(app, client, token, password), message)


def test_with_the_setting_off_a_user_with_a_passkey_still_uses_it(app, client, sent):
    from tests.support.accounts import PASSWORD

    _, user, public_id, token = sent
    require_passkey(app, False)
    assert 'name="password"' not in client.get(f"/authenticate/{token}").text
    refused(app, client, token, public_id, password_form(app, client, token, PASSWORD),
            "No passkey answer arrived")


def test_a_user_whose_passkey_is_gone_is_told_to_register_one_and_can_still_deny(
        app, client, auth, sent):
    _, user, public_id, token = sent
    remove_passkey(auth, user, passkey_ids(app, user)[0])
    page = client.get(f"/authenticate/{token}").text
    assert "You have no passkey, and your organisation requires one to verify" in page
    assert 'value="verify"' not in page
    before = database_rows(app)
    form = {"csrf_token": csrf_token_from(page), "decision": "verify",
            "code": binding_code(app, token)}
    response = client.post(f"/authenticate/{token}", data=form)
    assert response.status_code == 400
    assert database_rows(app) == before
    csrf = csrf_token_from(page)
    options = client.post(f"/authenticate/{token}/passkey-options", headers={"X-CSRFToken": csrf})
    assert options.status_code == 400 and "You have no passkey yet" in options.get_json()["error"]
    denied = client.post(f"/authenticate/{token}", data={"csrf_token": csrf, "decision": "deny"})
    assert denied.status_code == 200
    assert state_of(app, public_id)[0] == "denied"


# -- anything at all as the browser's answer --------------------------------------------------

JSON_LEAVES = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                        st.text(max_size=40),
                        st.sampled_from(["", "AA", "e30", "oA", "public-key"]))
# Two levels, not st.recursive: derandomized (CI) Hypothesis can draw no nested value from a
# recursive strategy and then refuses it as one that "doesn't use its argument".
JSON_VALUES = st.one_of(
    JSON_LEAVES, st.lists(JSON_LEAVES, max_size=3),
    st.dictionaries(st.text(max_size=10), st.one_of(JSON_LEAVES, st.lists(JSON_LEAVES,
                                                                          max_size=3)),
                    max_size=3))
RESPONSE_KEYS = ["clientDataJSON", "attestationObject", "authenticatorData", "signature",
                 "userHandle", "transports"]


def credential_shapes():
    response = st.dictionaries(st.sampled_from(RESPONSE_KEYS), JSON_VALUES)
    return st.fixed_dictionaries(
        {"id": st.text(max_size=20), "response": response},
        optional={"rawId": JSON_VALUES, "type": JSON_VALUES,
                  "clientExtensionResults": JSON_VALUES})


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(credential=credential_shapes())
def test_any_shape_of_answer_is_refused_with_a_message_never_an_error(app, sent, credential):
    _, user, public_id, _ = sent
    text = json.dumps(credential)
    with app.app_context():
        person = db.session.get(User, user.id)
        t = db.session.scalar(select(Transaction).where(Transaction.public_id == public_id))
        with pytest.raises(passkeys.PasskeyError):
            passkeys.register(person, text)
        with pytest.raises(passkeys.PasskeyError):
            passkeys.check_assertion(t, person, text)
        db.session.rollback()


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.sampled_from(RESPONSE_KEYS + ["id", "rawId", "type"]), value=JSON_VALUES)
def test_a_real_answer_with_one_field_replaced_is_refused_never_an_error(app, sent, key, value):
    """A field the ceremony checks, changed, is refused; one it ignores (a hint, the other
    ceremony's field) may be accepted; neither is ever an error of another kind."""
    _, user, public_id, _ = sent
    checked = {"registration": {"clientDataJSON", "attestationObject", "id", "rawId", "type"},
               "assertion": {"clientDataJSON", "authenticatorData", "signature", "id", "rawId",
                             "type"}}
    with app.app_context():
        person = db.session.get(User, user.id)
        t = db.session.scalar(select(Transaction).where(Transaction.public_id == public_id))
        for ceremony in ("registration", "assertion"):
            if ceremony == "registration":
                options = passkeys.registration_options(person)
                credential = SoftAuthenticator(ORIGIN).create(options)
            else:
                credential = user.authenticator.get(passkeys.assertion_options(t, person))
            place = credential if key in ("id", "rawId", "type") else credential["response"]
            if place.get(key) == value:
                continue
            place[key] = value
            try:
                with db.session.begin_nested():
                    if ceremony == "registration":
                        passkeys.register(person, json.dumps(credential))
                    else:
                        passkeys.check_assertion(t, person, json.dumps(credential))
            except passkeys.PasskeyError:
                continue
            assert key not in checked[ceremony], f"{ceremony} accepted a changed {key}"
        db.session.rollback()


def test_the_requestor_is_told_when_a_passkey_used_is_new(app, client, sent):
    # Anyone who knows the password can register a passkey; a new one is worth a question.
    requestor, user, public_id, token = sent
    client.post(f"/authenticate/{token}", data=verify_form(app, client, token, user))
    with app.app_context():
        used = db.session.scalar(select(Event).where(Event.kind == "passkey.used"))
        assert used.data["new"] is True
        assert words.describe(used.kind, used.data, "Uma").endswith(
            f"registered less than a day before ({used.data['registered_at'][:10]} "
            f"{used.data['registered_at'][11:16]} UTC): ask them whether they added it")


def test_a_passkey_older_than_a_day_is_not_called_new(app, client, sent):
    requestor, user, public_id, token = sent
    with app.app_context():
        db.session.execute(update(Passkey).values(
            created_at=utcnow() - passkeys.NEW_PASSKEY_AGE - timedelta(minutes=1)))
        db.session.commit()
    client.post(f"/authenticate/{token}", data=verify_form(app, client, token, user))
    with app.app_context():
        used = db.session.scalar(select(Event).where(Event.kind == "passkey.used"))
        assert used.data["new"] is False
        assert words.describe(used.kind, used.data, "Uma") == (
            "Uma proved it is them with the passkey 'Test passkey'")
