"""An integration: the organisation's setup of one channel, and its status indicator.

Every channel keeps its setup in one typed settings row, described by the channel's
``settings`` (plain values, and secrets kept encrypted: the first is the one it sends with).
Saving, removing a secret, masking it and saying why the organisation cannot send through the
channel are the same rules for all of them, so they live here, in ``Integration``, which each
channel extends.
"""
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import ClassVar

from sqlalchemy import select, update

from ..core import event_kinds as kinds
from ..core import event_log
from ..core.errors import ServiceError
from ..core.rows import default_row, get_or_create
from ..core.secrets import SecretUnreadable, decrypt, encrypt, mask
from ..extensions import db
from ..models import IntegrationStatus, utcnow
from ..runtime import runtime

MAX_ERROR_LENGTH = 2000


class SettingsError(ServiceError):
    """Settings cannot be saved as given; the message says why and what to do."""


@dataclass(frozen=True)
class Setting:
    """One setting of an integration: a column of its row and a field of its settings form.

    A secret is stored encrypted in ``<name>_ciphertext``; left empty on save, it is kept.
    """

    name: str
    label: str
    # Raw form text to the stored value (None when left empty); ValueError says what is wrong.
    clean: Callable
    required: bool = True
    secret: bool = False
    # What the admin is asked to do when enabling without it: "enter the SMTP host".
    needed: str | None = None
    # How a stored value reads in the changes ("no encryption", not "none").
    words: dict | None = None
    # Whether a change makes the status indicator's last outcome describe another setup.
    resets_status: bool = True
    # How the form shows it: "text", "password", "email", "tel" or "select" (with choices,
    # {value: label}), its label there, the help under it, and extra HTML attributes.
    kind: str = "text"
    field_label: str | None = None
    description: str = ""
    choices: dict | None = None
    default: str | None = None
    render_kw: dict = field(default_factory=dict)
    # A secret's word in the URL that removes it (/settings/<channel>/remove-<word>); None:
    # the channel page's ``secret_word``.
    word: str | None = None

    @property
    def column(self):
        return f"{self.name}_ciphertext" if self.secret else self.name

    def ask(self):
        return self.needed or f"enter the {self.label}"


def choice(options, message):
    """A clean function that accepts one of ``options``."""
    def clean(raw):
        if raw not in options:
            raise ValueError(message)
        return raw
    return clean


def join_words(words, conjunction="and"):
    """``a``, ``a and b``, ``a, b and c``."""
    return f"{', '.join(words[:-1])} {conjunction} {words[-1]}" if len(words) > 1 else words[0]


class Integration:
    """The settings rules every channel shares. A channel names its ``model`` (the settings
    table), its ``settings`` in the order the form shows them (at least one is a secret),
    its ``noun`` as said mid-sentence ("PagerDuty", "email") and an ``enable_hint``."""

    name: ClassVar[str]
    noun: ClassVar[str]
    model: ClassVar[type]
    settings: ClassVar[tuple["Setting", ...]] = ()
    enable_hint: ClassVar[str] = ""

    # The settings kept encrypted, and the first of them: the credential the channel sends
    # with (set for each channel class from its ``settings``).
    secret_settings: ClassVar[tuple["Setting", ...]] = ()
    secret_setting: ClassVar["Setting | None"] = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.secret_settings = tuple(s for s in cls.settings if s.secret)
        cls.secret_setting = cls.secret_settings[0] if cls.secret_settings else None

    def secret_named(self, word, default_word):
        """The secret setting whose URL word is ``word`` (``default_word`` for those that name
        none), or None."""
        return next((s for s in self.secret_settings if (s.word or default_word) == word), None)

    def settings_row(self):
        """For reading: the saved settings, or their defaults when nobody has saved any."""
        return db.session.get(self.model, 1) or default_row(self.model, id=1)

    def _settings_row_to_change(self):
        return get_or_create(self.model, 1, id=1)

    def missing_settings(self):
        """The required settings not saved yet, in the order the form shows them."""
        row = self.settings_row()
        return [s for s in self.settings if s.required and getattr(row, s.column) is None]

    def problem(self) -> str | None:
        """Why the organisation cannot send through the channel now, or None."""
        missing = self.missing_settings()
        if missing:
            return f"the {self.noun} integration has no " + join_words(
                [s.label for s in missing], "or")
        if not self.settings_row().enabled:
            return f"the {self.noun} integration is disabled"
        return None

    def draft(self, values: dict, purpose: str = "send a test") -> "Draft":
        """The saved settings with what the form has laid over them, for a test: never stored.

        ``values`` maps a setting's name to the raw form text; a setting left out keeps its
        saved value, a secret left empty the stored one (as on save). SettingsError says what
        is wrong with a value, or which required setting is missing (to do ``purpose``).
        """
        row = self.settings_row()
        overrides, typed = {}, {}
        for setting in self.settings:
            if setting.name not in values:
                continue
            cleaned = _clean(setting, values[setting.name])
            if setting.secret:
                if cleaned is not None:
                    typed[setting.name] = cleaned
            else:
                overrides[setting.column] = cleaned
        draft = Draft(row, overrides, typed, unsaved=self._differs(row, overrides, typed))
        missing = [s for s in self.settings if s.required and draft.lacks(s)]
        if missing:
            asks = join_words([s.ask() for s in missing])
            raise SettingsError(f"{asks[0].upper()}{asks[1:]} to {purpose}", missing[0].name)
        return draft

    def _differs(self, row, overrides, typed):
        if any(getattr(row, column) != value for column, value in overrides.items()):
            return True
        try:
            return any(self.stored_secret(s) != typed[s.name]
                       for s in self.secret_settings if s.name in typed)
        except SecretUnreadable:
            return True

    def update_settings(self, *, enabled: bool, values: dict, actor, now=None) -> list[str]:
        """Apply the admin's changes; returns what changed, in words (never a secret itself).

        ``values`` maps each setting's name to the raw form text. The secret left empty (or
        None) keeps the stored one. The audit event and the change are written in the current
        database transaction; nothing is changed when a value is refused.
        """
        row = self._settings_row_to_change()
        cleaned = {s.name: _clean(s, values.get(s.name)) for s in self.settings}
        if enabled:
            # A secret left empty keeps the stored one; any other setting left empty is cleared.
            missing = [s for s in self.settings if s.required and cleaned[s.name] is None
                       and not (s.secret and getattr(row, s.column) is not None)]
            if missing:
                raise self._incomplete(missing)

        changes, reset = [], False
        for setting in self.settings:
            old, new = getattr(row, setting.column), cleaned[setting.name]
            if setting.secret:
                if new is None:
                    continue
                new_value = encrypt(new)
            elif new == old:
                continue
            else:
                new_value = new
            changes.append(_describe(setting, old, new))
            setattr(row, setting.column, new_value)
            reset = reset or setting.resets_status
        if enabled != row.enabled:
            changes.append("integration enabled" if enabled else "integration disabled")
            row.enabled = enabled
        if reset:
            reset_status(self.name)
        if changes:
            self._touch(row, actor, now, changes)
        return changes

    def _incomplete(self, missing):
        asks = join_words([s.ask() for s in missing])
        return SettingsError(f"{asks[0].upper()}{asks[1:]} before enabling {self.noun}"
                             f"{self.enable_hint}.", missing[0].name)

    def remove_secret(self, *, actor, now=None, setting=None) -> "SecretRemoval":
        """Forget the stored secret (``setting``, or the one the channel sends with); an
        integration that cannot work without it is disabled. Says which happened."""
        secret = setting or self.secret_setting
        if getattr(self.settings_row(), secret.column) is None:
            return SecretRemoval(removed=False, disabled=False)
        row = self._settings_row_to_change()
        disabled = row.enabled and secret.required
        changes = [f"{secret.label} removed"]
        if disabled:
            changes.append("integration disabled")
            row.enabled = False
        setattr(row, secret.column, None)
        if secret.resets_status:
            reset_status(self.name)
        self._touch(row, actor, now, changes)
        return SecretRemoval(removed=True, disabled=disabled)

    def _touch(self, row, actor, now, changes):
        row.updated_at = now or utcnow()
        row.updated_by_id = actor.id if actor is not None else None
        event_log.record(kinds.settings_changed(self.name), actor=actor,
                         data={"changes": changes})

    def secret_mask(self, setting=None):
        """The stored secret as a mask, None when there is none, or a note when it cannot be
        read."""
        try:
            secret = self.stored_secret(setting)
        except SecretUnreadable as exc:
            return str(exc)
        return None if secret is None else mask(secret)

    def stored_secret(self, setting=None):
        """The decrypted secret (``setting``, or the one the channel sends with), or None.
        SecretUnreadable when the keys changed since it was saved: the dispatcher fails the
        delivery and shows it on the status indicator."""
        ciphertext = getattr(self.settings_row(), (setting or self.secret_setting).column)
        return None if ciphertext is None else decrypt(ciphertext)


class Draft:
    """Settings as a form has them, unsaved: reads like the settings row (the values typed
    over the saved ones); ``typed(setting)`` is a secret typed in (None: the stored one is
    used); ``unsaved`` says whether anything differs from what is saved."""

    def __init__(self, row, overrides, typed, *, unsaved):
        self._row, self._overrides, self._typed = row, overrides, typed
        self.unsaved = unsaved

    def __getattr__(self, name):
        overrides = self.__dict__["_overrides"]
        return overrides[name] if name in overrides else getattr(self.__dict__["_row"], name)

    def typed(self, setting):
        return self._typed.get(setting.name)

    def lacks(self, setting):
        return self.typed(setting) is None and getattr(self, setting.column) is None


@dataclass(frozen=True)
class SecretRemoval:
    """What removing a stored secret did: ``removed`` (False: none was stored) and whether the
    integration, which cannot work without it, was ``disabled``."""

    removed: bool
    disabled: bool


def _clean(setting, raw):
    if setting.secret and not (raw or "").strip():
        return None
    try:
        return setting.clean(raw)
    except ValueError as exc:
        raise SettingsError(str(exc), setting.name) from None


def _describe(setting, old, new):
    if setting.words:
        old, new = (setting.words.get(v, v) if v is not None else None for v in (old, new))
    if setting.secret:
        return f"{setting.label} {'replaced' if old is not None else 'added'}"
    if old is None:
        return f"{setting.label} set to {new}"
    if new is None:
        return f"{setting.label} cleared"
    return f"{setting.label} {old} → {new}"


# -- the status indicator ---------------------------------------------------------------------

@dataclass(frozen=True)
class StatusView:
    """What the status indicator shows: Success, Error (with the provider's text), Not yet
    invoked."""

    state: str
    label: str
    at: datetime | None = None
    error: str | None = None
    last_success_at: datetime | None = None


def status_view(channel):
    row = db.session.get(IntegrationStatus, channel)
    if row is None or row.last_outcome is None:
        return StatusView("never", "Not yet invoked")
    if row.last_outcome == "success":
        return StatusView("success", "Success", at=row.last_success_at,
                          last_success_at=row.last_success_at)
    if row.last_outcome == "retrying":
        return StatusView("retrying", "Retrying", at=row.last_error_at, error=row.last_error,
                          last_success_at=row.last_success_at)
    return StatusView("error", "Error", at=row.last_error_at, error=row.last_error,
                      last_success_at=row.last_success_at)


def has_been_invoked(channel):
    return db.session.scalar(
        select(IntegrationStatus.last_attempt_at).where(IntegrationStatus.channel == channel)
    ) is not None


STATUS_REFRESH_SECONDS = 1.0


def record_outcome(channel, *, success, error=None, at=None, retrying=False):
    """Update the channel's status indicator from a real send, in the current database
    transaction. ``retrying``: it failed, and will be tried again (a 429, a 5xx, a timeout):
    "retrying", not "error", until the retries run out.

    The same outcome (and error) again within a second is not written again: a burst of
    sends would otherwise queue every dispatcher on this one row.
    """
    at = at or utcnow()
    outcome = "success" if success else "retrying" if retrying else "error"
    seen = (outcome, error)
    written = runtime().status_writes
    previous = written.get(channel)
    if previous and previous[0] == seen and time.monotonic() - previous[1] < STATUS_REFRESH_SECONDS:
        return
    written[channel] = (seen, time.monotonic())
    values = {"last_outcome": outcome, "last_attempt_at": at}
    if success:
        values["last_success_at"] = at
    else:
        values["last_error_at"] = at
        values["last_error"] = (error or "Unknown error")[:MAX_ERROR_LENGTH]
    result = db.session.execute(
        update(IntegrationStatus).where(IntegrationStatus.channel == channel).values(**values)
    )
    if result.rowcount == 0:
        row = get_or_create(IntegrationStatus, channel, channel=channel)
        for name, value in values.items():
            setattr(row, name, value)


def reset_status(channel):
    """Back to "Not yet invoked": the configuration the old status described is gone."""
    runtime().status_writes.pop(channel, None)
    db.session.execute(
        update(IntegrationStatus).where(IntegrationStatus.channel == channel).values(
            last_outcome=None, last_attempt_at=None, last_success_at=None,
            last_error_at=None, last_error=None,
        )
    )
