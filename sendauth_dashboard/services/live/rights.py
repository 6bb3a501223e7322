"""Who is watching and what they may see: a stream's viewer, captured when it opens, and the
readings of each person's rights that their streams share."""
import threading
import time
from dataclasses import dataclass

from flask import has_app_context

from ...extensions import db
from ...models import User
from ...runtime import runtime
from ..people import sign_ins


@dataclass(frozen=True)
class Viewer:
    """Who is watching, captured when the stream opens, so deciding visibility needs no database.

    ``still_allowed`` asks whether that is still so (the stream asks on each heartbeat, whenever
    a user event goes by, and before reading the table); ``session_version`` None skips the
    check of the user's sessions, ``sign_in`` None (the hash of the stream's own signed-in
    session, services.people.sign_ins) the check that this session has not ended: signed
    out, or expired.
    """

    user_id: int
    sees_all: bool
    session_version: int | None = None
    sign_in: str | None = None

    @classmethod
    def of(cls, user, sign_in=None):
        return cls(user.id, user.has_role("reviewer"), user.session_version, sign_in)

    def still_allowed(self, rights=None, after_event=None):
        """True while the viewer is active, signed in, and may see what they saw when the
        stream opened (no more, no less: a changed role ends the stream, and the browser's
        reconnection gets a stream for the new role, or its refusal).

        Asks the database now, or, given the process's ``rights``, takes a reading of theirs
        that is recent and newer than ``after_event`` (a user event) and every other user
        event the process has heard (``Rights``)."""
        standing = (rights.standing(self.user_id, after_event) if rights is not None
                    else read_standing(self.user_id))
        if standing is None:
            return False
        active, requestor, reviewer, session_version, open_sessions = standing
        return (active and requestor and reviewer == self.sees_all
                and self.session_version in (None, session_version)
                and (self.sign_in is None or self.sign_in in open_sessions))

    def may_see(self, message):
        transaction = message.get("transaction")
        if transaction is None:
            return False
        return self.sees_all or transaction["requestor_id"] == self.user_id


class Refused(Exception):
    """A stream may not open: ``status`` 401 (not signed in, or that session has ended) or
    403 (signed in, but not a requestor)."""

    def __init__(self, status):
        super().__init__(status)
        self.status = status


def watcher(rights, user_id, session_version, sign_in):
    """The Viewer of a stream opening for a signed-in session (``pages.auth.signed_in_as``),
    checked as ``load_user`` checks it, against the person's reading that their streams share
    (``Rights``: recent, and newer than any user event heard); Refused when it may not open.

    A refusal is read again from the database before it stands: the shared reading may be from
    just before this session began (signed in a moment ago, on another device)."""
    for read in (rights.standing, rights.read_now):
        standing = read(user_id)
        status = _refusal(standing, session_version, sign_in)
        if status is None:
            return Viewer(user_id, standing[2], session_version, sign_in)
    raise Refused(status)


def _refusal(standing, session_version, sign_in):
    if standing is None:
        return 401
    active, requestor, _, version, open_sessions = standing
    if not active or version != session_version or sign_in not in open_sessions:
        return 401
    return None if requestor else 403


def read_standing(user_id):
    """(active, requestor, reviewer, session version, the hashes of their open signed-in
    sessions) of a user, from the database; None when there is no such user. The session is
    closed before the stream waits again."""
    try:
        user = db.session.get(User, user_id)
        if user is None:
            return None
        return (user.active, user.has_role("requestor"), user.has_role("reviewer"),
                user.session_version, sign_ins.open_sessions(user_id))
    finally:
        db.session.remove()


class Rights:
    """What each watching user may do, as this process last read it, shared by their streams.

    Each stream asked the database itself on every heartbeat, and all of them at once on every
    user event: at 5,000 watchers a query 333 times a second, most of the worker's CPU, and
    5,000 queries in a row when an admin changes anyone's role (bench/fanout.py). Streams of the
    same person now share a reading that is younger than ``max_age`` and was begun after the
    newest user event any stream of this process has seen: the first stream to see a user
    event reads again, the others take that reading. No stream acts on a reading older than a
    change it has heard of; a change with no event (none is made without one) shows within a
    heartbeat and ``max_age``.
    """

    def __init__(self, max_age=1.0, clock=time.monotonic, app=None):
        self.max_age = max_age
        self.app = app  # for a reading asked outside an app context (a stream's opening)
        self._clock = clock
        self._lock = threading.Lock()
        self._heard = 0  # the newest user event a stream of this process has seen
        self._readings = {}  # user id -> _Reading, the newest done
        self._reading_now = {}  # user id -> _Reading under way (the others wait for it)

    def standing(self, user_id, after_event=None):
        with self._lock:
            if after_event is not None and after_event > self._heard:
                self._heard = after_event
            heard, now = self._heard, self._clock()
            done = self._readings.get(user_id)
            if done is not None and done.heard >= heard and now - done.began < self.max_age:
                return done.standing
            reading = self._reading_now.get(user_id)
            mine = reading is None or reading.heard < heard
            if mine:
                reading = self._reading_now[user_id] = _Reading(heard, now)
        if not mine:
            # One query for all of this person's streams, also where a query lets the others
            # run meanwhile (gevent, PostgreSQL): they wait for it rather than ask too.
            if reading.finished.wait(30) and reading.standing is not _UNREAD:
                return reading.standing
            return self.read_now(user_id)
        try:
            reading.standing = self.read_now(user_id)
        finally:
            with self._lock:
                if self._reading_now.get(user_id) is reading:
                    del self._reading_now[user_id]
                done = self._readings.get(user_id)
                if reading.standing is not _UNREAD and (
                        done is None or (done.heard, done.began) <= (heard, now)):
                    self._readings[user_id] = reading
            reading.finished.set()
        return reading.standing

    def read_now(self, user_id):
        """``read_standing``, in an app context of its own when asked outside one."""
        if self.app is None or has_app_context():
            return read_standing(user_id)
        with self.app.app_context():
            return read_standing(user_id)


_UNREAD = object()


class _Reading:
    __slots__ = ("heard", "began", "standing", "finished")

    def __init__(self, heard, began):
        self.heard, self.began = heard, began
        self.standing = _UNREAD
        self.finished = threading.Event()


def rights_of(app=None):
    return runtime(app).viewer_rights


