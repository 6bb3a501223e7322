"""Rows that would grow for ever do not: passkey options are limited per user, and the
dispatcher deletes expired challenges, sessions ended a while ago and old webhook ids."""
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from sendauth_dashboard.extensions import db
from sendauth_dashboard.models import PasskeyChallenge, SignIn, WebhookReceipt, utcnow
from sendauth_dashboard.services.outbox.dispatcher import Dispatcher
from tests.support.web import AuthActions, csrf_token_from


def challenges(app, user_id=None):
    with app.app_context():
        query = select(func.count(PasskeyChallenge.id))
        if user_id is not None:
            query = query.where(PasskeyChallenge.user_id == user_id)
        return db.session.scalar(query)


@pytest.mark.parametrize("app_config", [{"RATELIMIT_ENABLED": True,
                                         "PASSKEY_OPTIONS_RATE_LIMIT": "5 per minute"}])
def test_passkey_options_are_limited_per_user(app, make_user):
    uma, otto = make_user("member"), make_user("member")
    auth = AuthActions(app.test_client())
    auth.login(uma)
    csrf = csrf_token_from(auth.client.get("/profile/messaging").text)
    before = challenges(app, uma.id)
    answers = [auth.client.post("/profile/proof-options", headers={"X-CSRFToken": csrf}
                                ).status_code for _ in range(8)]
    assert answers == [200] * 4 + [429] * 4, "registering the passkey took one of the five"
    assert challenges(app, uma.id) == before + 4
    other = AuthActions(app.test_client())
    other.login(otto)
    csrf = csrf_token_from(other.client.get("/profile/messaging").text)
    assert other.client.post("/profile/proof-options",
                             headers={"X-CSRFToken": csrf}).status_code == 200


@pytest.mark.both_databases
def test_the_dispatcher_prunes_what_has_expired_and_keeps_the_rest(app, make_user):
    uma = make_user("member")
    now = utcnow()
    with app.app_context():
        db.session.query(PasskeyChallenge).delete()
        db.session.add_all([
            PasskeyChallenge(purpose="prove", user_id=uma.id, challenge="expired",
                             created_at=now - timedelta(minutes=10),
                             expires_at=now - timedelta(minutes=5)),
            PasskeyChallenge(purpose="prove", user_id=uma.id, challenge="fresh",
                             created_at=now, expires_at=now + timedelta(minutes=5)),
            SignIn(user_id=uma.id, token_hash="ended-long-ago", created_at=now - timedelta(days=3),
                   last_seen_at=now - timedelta(days=3), ended_at=now - timedelta(days=2)),
            SignIn(user_id=uma.id, token_hash="ended-lately", created_at=now - timedelta(hours=2),
                   last_seen_at=now - timedelta(hours=2), ended_at=now - timedelta(hours=1)),
            SignIn(user_id=uma.id, token_hash="open", created_at=now, last_seen_at=now),
            SignIn(user_id=uma.id, token_hash="idle-for-days", created_at=now - timedelta(days=3),
                   last_seen_at=now - timedelta(days=3)),
            WebhookReceipt(webhook_id="old", received_at=now - timedelta(days=4)),
            WebhookReceipt(webhook_id="new", received_at=now - timedelta(hours=1)),
        ])
        db.session.commit()
    Dispatcher(app).run_until_idle()
    with app.app_context():
        assert db.session.scalars(select(PasskeyChallenge.challenge)).all() == ["fresh"]
        assert sorted(db.session.scalars(select(SignIn.token_hash)).all()) == [
            "ended-lately", "open"]
        assert db.session.scalars(select(WebhookReceipt.webhook_id)).all() == ["new"]


def test_a_users_new_challenge_takes_their_expired_ones_away(app, make_user):
    uma = make_user("member")
    auth = AuthActions(app.test_client())
    auth.login(uma)
    with app.app_context():
        db.session.query(PasskeyChallenge).update(
            {"expires_at": utcnow() - timedelta(seconds=1)})
        db.session.commit()
    assert challenges(app, uma.id) == 1  # the registration's, used and expired
    csrf = csrf_token_from(auth.client.get("/profile/messaging").text)
    for _ in range(3):
        assert auth.client.post("/profile/proof-options",
                                headers={"X-CSRFToken": csrf}).status_code == 200
    assert challenges(app, uma.id) == 3
