"""The promises every channel's settings page keeps, as an admin uses it, once per channel.

The channels are described once (conftest.py here); the tests are the same for all of them.
(PagerDuty's page also has tests of its own: the key's format, the severity.)
"""
import logging

import pytest
from sqlalchemy import select

from sendauth_dashboard import channels
from sendauth_dashboard.extensions import db
from sendauth_dashboard.models import Event
from tests.support.helpers import database_at_rest, masked


@pytest.fixture
def admin(make_user, case):
    return make_user("admin", email="admin@example.com", name="Ada Admin", **case.contact)


def url(case, suffix=""):
    return f"/settings/{case.channel}{suffix}"


def save(as_admin, case, fake, *, enabled=True, secret=None, **fields):
    form = case.settings(fake)
    form.update(fields)
    if enabled:
        form["enabled"] = "y"
    if secret is not None:
        form[case.secret_field] = secret
    return as_admin.post(url(case), form)


def page(client, case):
    return client.get(url(case)).text


def stored(app, case):
    with app.app_context():
        settings = channels.channel(case.channel).settings_row()
        return settings.enabled, getattr(settings, f"{case.secret_field}_ciphertext")


def changes(app, case):
    with app.app_context():
        return [e.data["changes"] for e in db.session.scalars(
            select(Event).where(Event.kind == f"settings.{case.channel}_changed")
            .order_by(Event.id))]


def test_a_new_page_is_disabled_and_not_yet_invoked(client, as_admin, case):
    html = page(client, case)
    assert 'name="enabled" type="checkbox" value="y">' in html
    assert 'data-state="never"' in html and "Not yet invoked" in html
    assert "Nothing is sent through" in html


def test_admin_saves_the_settings_and_sees_only_a_mask_of_the_secret(app, client, as_admin,
                                                                     case, fake):
    response = save(as_admin, case, fake, secret=case.secret)
    assert response.status_code == 302
    html = page(client, case)
    assert "Saved: " in html and "integration enabled" in html
    assert "•" * (len(case.secret) - 4) + case.secret[-4:] in html
    assert case.secret not in html
    enabled, ciphertext = stored(app, case)
    assert enabled and case.secret not in ciphertext


def test_saving_with_the_secret_left_empty_keeps_the_stored_one(app, as_admin, case, fake):
    save(as_admin, case, fake, secret=case.secret)
    before = stored(app, case)[1]
    save(as_admin, case, fake, enabled=False, secret="")
    assert stored(app, case) == (False, before)
    assert changes(app, case)[-1] == ["integration disabled"]


def test_admin_can_replace_the_secret_without_seeing_the_old_one(app, client, as_admin, case,
                                                                 fake):
    save(as_admin, case, fake, secret=case.secret)
    save(as_admin, case, fake, secret=case.other_secret)
    html = page(client, case)
    assert masked(case.other_secret) in html
    assert case.secret not in html and case.other_secret not in html
    secret_label = channels.REGISTRY[case.channel].secret_setting.label
    assert changes(app, case)[-1] == [f"{secret_label} replaced"]


def test_the_secret_can_be_removed(app, client, as_admin, case, fake):
    save(as_admin, case, fake, secret=case.secret)
    as_admin.post(url(case, f"/{case.remove_path}"))
    assert stored(app, case)[1] is None
    html = page(client, case)
    assert "Removed the " in html
    assert "Stored " in html and "<span class=\"muted\">none</span>" in html


def test_the_secret_is_encrypted_in_the_database(app, as_admin, case, fake):
    save(as_admin, case, fake, secret=case.secret)
    ciphertext = stored(app, case)[1]
    raw = database_at_rest(app)
    assert ciphertext.encode() in raw, "read what the app wrote"
    assert case.secret.encode() not in raw


def test_the_test_button_reaches_the_admin_and_shows_success(client, admin, as_admin, case,
                                                             fake):
    save(as_admin, case, fake, secret=case.secret)
    response = as_admin.post(url(case, "/test"))
    assert response.status_code == 302
    ((recipient, text),) = case.sent(fake)
    assert recipient == case.reaches(admin)
    assert "test" in text.lower() and "Ada Admin" in text
    html = page(client, case)
    assert "accepted the test" in html
    assert 'data-state="success"' in html


def test_the_test_button_shows_the_providers_own_error(client, as_admin, case, fake):
    save(as_admin, case, fake, secret=case.secret)
    case.refuse(fake, "Refused for this test")
    as_admin.post(url(case, "/test"))
    html = page(client, case)
    assert 'data-state="error"' in html
    assert f"<code>{case.refused_error('Refused for this test')}</code>" in html
    assert "refused the test" in html


def test_changing_the_settings_resets_the_status_to_not_yet_invoked(client, as_admin, case, fake):
    save(as_admin, case, fake, secret=case.secret)
    as_admin.post(url(case, "/test"))
    assert 'data-state="success"' in page(client, case)
    save(as_admin, case, fake, secret=case.other_secret)
    assert 'data-state="never"' in page(client, case)


def test_the_secret_is_never_in_a_log_an_event_or_an_error(app, client, as_admin, case, fake,
                                                           caplog):
    caplog.set_level(logging.DEBUG)
    save(as_admin, case, fake, secret=case.secret)
    case.refuse(fake, f"Unknown secret {case.secret}")
    as_admin.post(url(case, "/test"))
    html = page(client, case)
    assert 'data-state="error"' in html
    assert case.secret not in html
    assert masked(case.secret) in html, "the provider's text is shown, with the secret masked"
    ours = [r for r in caplog.records if r.name != "mail.log"]  # not the fake server's own log
    assert all(case.secret not in f"{r.getMessage()} {r.exc_text}" for r in ours)
    with app.app_context():
        for event in db.session.scalars(select(Event)):
            assert case.secret not in repr(event.data)


def test_a_test_refused_quoting_an_answer_link_shows_it_masked(app, client, as_admin, case,
                                                               fake):
    save(as_admin, case, fake, secret=case.secret)
    token = "Zq3_kL9-pW2xYv7nB4mR8tJ6hC1sD5fG0aE2uI9oK3w"
    case.refuse(fake, f"blocklisted URL: http://sendauth.test/authenticate/{token}")
    as_admin.post(url(case, "/test"))
    html = page(client, case)
    assert "blocklisted URL: http://sendauth.test/authenticate/" in html
    assert token not in html and masked(token) in html
    with app.app_context():
        assert all(token not in repr(e.data) for e in db.session.scalars(select(Event)))


def test_enabling_before_the_required_settings_are_saved_is_refused(app, as_admin, case):
    response = as_admin.post(url(case), {"enabled": "y"})
    assert response.status_code == 400
    assert "before enabling" in response.text
    assert stored(app, case) == (False, None)
    assert changes(app, case) == []


def test_members_requestors_and_reviewers_get_403_and_no_link(client, auth, make_user, case):
    for role in ("member", "requestor", "reviewer"):
        auth.login(make_user(role))
        assert client.get(url(case)).status_code == 403
        assert f'href="/settings/{case.channel}"' not in client.get("/").text
        auth.logout()


def test_admins_reach_every_channel_from_the_menu_and_the_sub_navigation(client, as_admin, case,
                                                                         fake):
    assert '<a href="/settings/channels">Channels</a>' in client.get("/settings/users").text
    save(as_admin, case, fake, secret=case.secret)
    html = page(client, case)
    nav = html[html.index('<nav class="subnav"'):html.index("</nav>", html.index('class="subnav"'))]
    for channel in channels.names():
        assert f'href="/settings/{channel}"' in nav
    assert f'href="/settings/{case.channel}" aria-current="page"' in nav
    assert nav.count(">on</span>") == 1 and nav.count(">off</span>") == 3


def test_saving_without_ticking_enable_says_the_channel_is_still_off(app, client, as_admin,
                                                                     case, fake):
    save(as_admin, case, fake, enabled=False, secret=case.secret)
    assert stored(app, case)[0] is False
    html = page(client, case)
    assert '<p class="flash flash-warning">Saved: ' in html
    assert "; still off — tick Enable to use it." in html
    save(as_admin, case, fake, secret="")
    assert "integration enabled." in page(client, case)


def test_the_test_button_sends_the_form_as_typed_and_stores_nothing(app, client, admin, as_admin,
                                                                    case, fake):
    """No script: the unsaved form goes to /test; the page comes back with the answer beside
    the button (not at the top), the typed secret neither stored nor shown."""
    form = {**case.settings(fake), case.secret_field: case.secret}
    response = as_admin.post(url(case, "/test"), form)
    assert response.headers["Location"] == url(case, "#test-result")
    ((recipient, _),) = case.sent(fake)
    assert recipient == case.reaches(admin)
    html = page(client, case)
    beside = html[html.index('id="test-result"'):html.index('id="audit-heading"')]
    assert "accepted the test" in beside and "which are not saved" in beside
    assert 'class="flashes"' not in html
    assert case.secret not in html
    assert stored(app, case) == (False, None)
    assert 'data-state="never"' in html, "the status tells of the saved settings"
    assert "with settings not saved: accepted" in html


def test_the_test_answers_a_script_in_place_with_a_refusal_in_words(as_admin, case, fake):
    case.refuse(fake, "Refused for this test")
    response = as_admin.post(url(case, "/test"), {**case.settings(fake),
                                                  case.secret_field: case.secret},
                             headers={"X-Requested-With": "fetch"})
    assert response.status_code == 200
    assert response.text.lstrip().startswith('<p class="flash flash-error"')
    assert "refused the test" in response.text
    assert "<template data-status-now>" in response.text
    assert case.secret not in response.text

