"""Accounts and roles: creating users, signing in, and the rules that keep an admin in charge."""
import functools
import re
import secrets
from urllib.parse import urlsplit

from email_validator import EmailNotValidError, validate_email
from flask import current_app
from sqlalchemy import func, or_, select
from werkzeug.security import check_password_hash, generate_password_hash
from zxcvbn import zxcvbn

from ...core import event_kinds as kinds
from ...core import event_log, rows
from ...core.errors import ServiceError
from ...core.text import control_character
from ...extensions import db
from ...models import ROLES, SignInSettings, User, role_rank, utcnow
from . import attempts

# The password rule: new ones at least this long; none longer, new or typed to sign in or
# prove (hashing a megabyte of "password" would keep scrypt busy).
MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 1024
MAX_NAME_LENGTH = 100


@functools.cache
def _dummy_hash(method):
    """Checked when the email is unknown, so a wrong email takes as long as a wrong password:
    made with the configured method, or the time would tell which emails have accounts."""
    return generate_password_hash("not a real password", method=method)


class AccountError(ServiceError):
    """A rule about accounts was broken; the message tells the person how to fix it."""


def normalize_email(email):
    """The stored form of an email: trimmed, checked, lower-cased. Raises AccountError."""
    email = (email or "").strip()
    if not email:
        raise AccountError("Enter an email address.", "email")
    try:
        checked = validate_email(email, check_deliverability=False, globally_deliverable=False)
    except EmailNotValidError as exc:
        raise AccountError(f"That email address is not valid: {exc}", "email") from None
    return checked.normalized.lower()


# zxcvbn looks at this much of a password (it refuses more); the rest only adds strength.
GUESSABILITY_CHARS = 72
# zxcvbn's scores: 0 and 1 fall to an online attack, 2 to a throttled one; 3 and 4 hold.
MIN_PASSWORD_SCORE = 3


def check_password_rules(password, user=None):
    """A minimum length, not a common or easily guessed password (zxcvbn, a pinned package
    with its lists of the most common passwords, words and names, read locally, must rate it
    at least "safely unguessable" for an online attack), and not mostly made of what an
    attacker tries first for this person: their name, their email, the product's name and the
    organisation's (``known_words``)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(
            f"The password must be at least {MIN_PASSWORD_LENGTH} characters; "
            f"this one has {len(password)}.",
            "password",
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise AccountError(
            f"The password must be at most {MAX_PASSWORD_LENGTH} characters.", "password"
        )
    known = known_words(user)
    used = _made_of(password, known)
    if used:
        raise AccountError(
            f"This password is mostly made of {', '.join(used)}: your name, your email address "
            "or the name of the product or organisation, which is what a guesser tries first. "
            "Choose one of four or five unrelated words.", "password")
    rating = zxcvbn(password[:GUESSABILITY_CHARS], user_inputs=known)
    if rating["score"] < MIN_PASSWORD_SCORE:
        warning = rating["feedback"]["warning"] or "It follows a common pattern."
        raise AccountError(
            f"This password is too easy to guess: {warning.rstrip('.')}. Choose a longer one, "
            "such as four or five unrelated words.", "password")


PRODUCT_NAMES = ("SendAuth",)
# Parts of addresses that say nothing about whose they are.
_NOT_NAMES = {"com", "org", "net", "www", "http", "https", "mail"}


def known_words(user=None):
    """The words a guesser tries first, lower-cased, longest first: the parts of ``user``'s
    name and email address (and each run together: "ivyinvited"), the product's name, the
    organisation's (ORGANISATION_NAMES, and the parts of BASE_URL's host name)."""
    texts = [*PRODUCT_NAMES, *current_app.config["ORGANISATION_NAMES"],
             urlsplit(current_app.config["BASE_URL"]).hostname or ""]
    if user is not None:
        texts += [user.name or "", user.email or "", (user.email or "").partition("@")[0]]
    words = set()
    for text in texts:
        parts = [p for p in re.split(r"[^0-9a-z]+", text.lower()) if p]
        words.update(parts)
        words.add("".join(parts))
    return sorted((w for w in words if len(w) >= 3 and w not in _NOT_NAMES),
                  key=lambda w: (-len(w), w))


def _made_of(password, known):
    """The known words that make up at least half of ``password`` (ignoring case), or []."""
    lowered = password.lower()
    covered, used = [False] * len(lowered), []
    for word in known:
        start = lowered.find(word)
        while start != -1:
            if not all(covered[start:start + len(word)]):
                covered[start:start + len(word)] = [True] * len(word)
                if word not in used:
                    used.append(word)
            start = lowered.find(word, start + 1)
    return used if 2 * sum(covered) >= len(lowered) else []


def hash_password(password):
    return generate_password_hash(password, method=current_app.config["PASSWORD_HASH_METHOD"])


def password_matches(user, password):
    """Whether ``password`` is ``user``'s; one longer than any password may be is not even
    hashed."""
    password = password or ""
    return len(password) <= MAX_PASSWORD_LENGTH and \
        check_password_hash(user.password_hash, password)


def password_proves(user, password):
    """``password_matches``, counted per user before it is checked (attempts.of_user:
    TooManyAttempts past the limit); a right password gives its count back."""
    attempt = attempts.of_user(user)
    if password_matches(user, password):
        attempt.give_back()
        return True
    return False


def find_by_email(email):
    try:
        email = normalize_email(email)
    except AccountError:
        return None
    return db.session.scalar(select(User).where(User.email == email))


def grantable_roles(actor):
    """The roles ``actor`` may give: up to their own (a registrar cannot make an admin)."""
    return ROLES if actor is None else ROLES[:role_rank(actor.role) + 1]


class BeyondYourRole(AccountError):
    """The change needs a higher role than the actor's (the API answers 403)."""


def check_may_grant(actor, role):
    if role not in ROLES:
        raise AccountError(f"Unknown role {role!r}: choose one of {', '.join(ROLES)}.", "role")
    if role not in grantable_roles(actor):
        raise BeyondYourRole(f"Only an admin can give the role {role}; as a {actor.role} you "
                             f"can give {', '.join(grantable_roles(actor))}.", "role")


def may_manage(actor, user):
    """Whether ``actor`` may invite, change, deactivate or issue links for ``user``: anyone
    whose role is not above their own (a registrar manages people, not admins). ``actor``
    None is the operator at the command line."""
    return actor is None or role_rank(user.role) <= role_rank(actor.role)


def check_may_manage(actor, user):
    if not may_manage(actor, user):
        raise BeyondYourRole(f"{user.name} is an {user.role}: only an admin can change their "
                             "account.", "role")


def create_user(*, email, name, role, password, actor=None, via=None):
    """Create an account and its audit event in the current database transaction; ``via``
    names what made it when no person did (``"scim"``)."""
    email = normalize_email(email)
    name = (name or "").strip()
    if not name:
        raise AccountError("Enter a name: it is shown to the people this user sends requests to.",
                           "name")
    if len(name) > MAX_NAME_LENGTH:
        raise AccountError(f"The name must be at most {MAX_NAME_LENGTH} characters.", "name")
    bad = control_character(name)
    if bad:
        raise AccountError(f"The name contains {bad}: write it on one line, with no control "
                           "characters (it is used in email headers and message lines).", "name")
    check_may_grant(actor, role)
    if password is not None:
        check_password_rules(password, user=User(email=email, name=name))
    if db.session.scalar(select(User.id).where(User.email == email)) is not None:
        raise AccountError(f"There is already an account for {email}.", "email")
    # Invited (no password given): one nobody knows, until the invitation sets theirs.
    user = User(email=email, name=name, role=role,
                password_hash=hash_password(password or secrets.token_urlsafe(32)))
    db.session.add(user)
    event_log.record(kinds.USER_CREATED, actor=actor, data={
        "email": email, "role": role, **({"invited": True} if password is None else {}),
        **({"via": via} if via else {})})
    db.session.flush()
    return user


def authenticate(email, password):
    """The active user with this email and password, else None (the same for either mistake)."""
    if len(password or "") > MAX_PASSWORD_LENGTH:
        return None  # never hashed, whether or not the email is someone's
    user = find_by_email(email)
    if user is None:
        check_password_hash(_dummy_hash(current_app.config["PASSWORD_HASH_METHOD"]),
                            password or "")
        return None
    return user if password_matches(user, password) else None


def record_sign_in(user, method, now=None):
    """When the user last signed in (the users page shows it), and how, in the audit log
    (uncommitted): ``method`` is ``password`` or ``a passkey``."""
    user.last_sign_in_at = now or utcnow()
    event_log.record(kinds.USER_SIGNED_IN, actor=user, data={"method": method})


def _other_active_admins(user):
    return db.session.scalar(
        select(func.count(User.id)).where(
            User.role == "admin", User.active.is_(True), User.id != user.id
        )
    )


def _lock_admins_table():
    rows.lock(User, User.role == "admin", User.active.is_(True))


def _lock_admins(user):
    """Lock the active admin rows (core.rows.lock), so two admins cannot demote each other at
    once, and read ``user`` again under the lock: no other demotion can commit between the
    count that follows and this transaction's commit."""
    _lock_admins_table()
    db.session.refresh(user)


def has_active_admin():
    return db.session.scalar(select(func.count(User.id)).where(
        User.role == "admin", User.active.is_(True))) > 0


def restore_admin(*, email, name, password):
    """The operator's way back when no active admin is left: the account ``email`` becomes an
    active admin (created with ``password`` if there is none; an existing one keeps its own
    password unless ``password`` is given), and break-glass: with single sign-on required, a
    password signs in no one else. Returns the user, or None when an active admin exists
    already. Uncommitted, with its events."""
    _lock_admins_table()
    if has_active_admin():
        return None
    user = find_by_email(email)
    if user is None:
        user = create_user(email=email, name=name, role="admin", password=password)
        user.break_glass = True
        return user
    if user.role != "admin":
        event_log.record(kinds.USER_ROLE_CHANGED, actor=None,
                         data={"email": user.email, "from": user.role, "to": "admin"})
        user.role = "admin"
    if not user.active:
        user.active = True
        event_log.record(kinds.USER_REACTIVATED, actor=None, data={"email": user.email})
    if password:
        check_password_rules(password, user=user)
        user.password_hash = hash_password(password)
        user.end_sessions()
        event_log.record(kinds.USER_PASSWORD_SET, actor=None, data={"email": user.email})
    user.break_glass = True
    return user


def _check_break_glass_kept(user):
    """With single sign-on required, the last break-glass admin (the way in when the identity
    provider fails) stays one: AccountError. Call it with the admins locked."""
    settings = db.session.get(SignInSettings, 1)
    if not user.is_break_glass or settings is None or not settings.require_sso:
        return
    others = db.session.scalar(select(func.count(User.id)).where(
        User.break_glass.is_(True), User.role == "admin", User.active.is_(True),
        User.id != user.id))
    if others == 0:
        raise AccountError(
            f"{user.name} is the last break-glass admin, and single sign-on is required: mark "
            "another admin break-glass in Settings → Sign-in first.", "role")


def change_role(user, role, *, actor, via=None):
    check_may_grant(actor, role)
    check_may_manage(actor, user)
    if role == user.role:
        return False
    if user.role == "admin" and user.active:
        _lock_admins(user)
        if user.role == "admin" and user.active and _other_active_admins(user) == 0:
            raise AccountError(
                f"{user.name} is the last active admin; make another user an admin first.", "role"
            )
        _check_break_glass_kept(user)
    event_log.record(
        kinds.USER_ROLE_CHANGED, actor=actor,
        data={"email": user.email, "from": user.role, "to": role, **({"via": via} if via else {})},
    )
    user.role = role
    return True


def set_active(user, active, *, actor, via=None):
    """The account's part of (de)activating ``user``: the rules, the flag, their sessions
    ended, the event. services.provisioning.access.set_active is the whole step."""
    check_may_manage(actor, user)
    if active == user.active:
        return False
    if not active and actor is not None and actor.id == user.id:
        raise AccountError("You cannot deactivate your own account; ask another admin.", "active")
    if not active and user.role == "admin":
        _lock_admins(user)
        if user.role == "admin" and user.active and _other_active_admins(user) == 0:
            raise AccountError(
                f"{user.name} is the last active admin; make another user an admin first.",
                "active",
            )
        _check_break_glass_kept(user)
    user.active = active
    user.end_sessions()
    event_log.record(
        kinds.USER_REACTIVATED if active else kinds.USER_DEACTIVATED, actor=actor,
        data={"email": user.email, **({"via": via} if via else {})},
    )
    return True


def check_password_change(user, *, current, new):
    """The user's own change: the current password first, then the rules for the new one;
    AccountError when either fails (services.people.passwords makes the change)."""
    if not current or not password_proves(user, current):
        raise AccountError("That is not your current password. Enter the password you sign in "
                           "with now.", "current_password")
    check_password_rules(new or "", user=user)
    if check_password_hash(user.password_hash, new):
        raise AccountError("The new password is the one you have now: choose another.",
                           "new_password")


MAX_SEARCH = 254


def search(words=""):
    """Everyone, the active first, by name; with ``words``, those whose name or email holds
    them (as typed, case aside: ``%`` and ``_`` match themselves)."""
    query = select(User).order_by(User.active.desc(), User.name)
    needle = (words or "").strip().lower()[:MAX_SEARCH]
    if needle:
        query = query.where(or_(func.lower(User.name).contains(needle, autoescape=True),
                                func.lower(User.email).contains(needle, autoescape=True)))
    return db.session.scalars(query).all()
