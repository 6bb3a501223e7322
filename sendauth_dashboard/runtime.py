"""What the app keeps for its lifetime besides the Flask extensions, in one object, and the
seams other code plugs into it.

``create_app`` builds the Runtime from the configuration and stores it as
``app.extensions["sendauth"]``; services reach it through ``runtime()``. This module imports
nothing of the app's, so any layer may use it: the Protocols below say what each part must
do, and the modules that make them (core.secrets, services.live.broker,
services.outbox.send_window, services.outbox.dispatcher) say how.
"""
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from flask import Flask, current_app

# An event as streams send it (services.live.messages.message_for): JSON-ready.
Message = dict[str, Any]


class SecretBox(Protocol):
    """Encrypts stored secrets (core.secrets.SecretBox)."""

    def encrypt(self, plaintext: str) -> str: ...

    def decrypt(self, ciphertext: str) -> str: ...


class Subscription(Protocol):
    """One watcher's bounded queue of messages (services.live.broker.Subscription). Besides
    messages it carries the broker's CLOSE and RESYNC markers."""

    overflowed: bool
    # The stream's socket writer (services.live.conduit), when the fan-out may write to it
    # directly; else None.
    conduit: Any

    @property
    def empty(self) -> bool: ...

    def put(self, message: Message | object) -> None: ...

    def get(self, timeout: float) -> Message | object | None: ...

    def drain(self) -> None: ...


class Broker(Protocol):
    """Carries committed events to open streams (in this process, or with Redis in every
    process) and wake-ups to dispatchers in other processes (services.live.broker).
    ``recent``: the events it fanned out lately (services.live.recent.RecentEvents)."""

    recent: Any

    @property
    def subscriber_count(self) -> int: ...

    def subscribe(self) -> Subscription: ...

    def unsubscribe(self, subscription: Subscription) -> None: ...

    def publish(self, message: Message) -> None: ...

    def close_all(self) -> None: ...

    def resync_all(self) -> None: ...

    def publish_wake(self, kind: str = ...) -> None: ...

    def warm(self) -> None: ...

    def on_wake(self, callback: Callable[[], None], kind: str | None = None) -> None: ...


class SendWindow(Protocol):
    """How many sends each rate-limited channel may make now: at most ``limit`` in any
    ``period`` seconds per ``key`` (services.outbox.send_window)."""

    def reserve(self, key: str, limit: int, period: float, wanted: int) -> int:
        """Count up to ``wanted`` sends now; returns how many fit."""

    def release(self, key: str, count: int) -> None:
        """Give back reserved sends that were not made."""

    def next_free_in(self, key: str, limit: int, period: float) -> float:
        """Seconds until one more send fits (0 when one fits now)."""


class Dispatcher(Protocol):
    """Sends what the outbox holds (services.outbox.dispatcher.Dispatcher)."""

    def wake(self) -> None:
        """Look for due deliveries now rather than after the idle wait."""

    def stop(self, timeout: float | None = None) -> None: ...


@dataclass(eq=False)
class Runtime:
    secret_box: SecretBox
    broker: Broker
    send_window: SendWindow
    # The web process's dispatcher once started; None in CLI commands and with DISPATCHER=off.
    dispatcher: Dispatcher | None = None
    # The web process's webhook sender once started (services.webhooks.sender.Sender).
    webhook_sender: Dispatcher | None = None
    # Each channel's instance (channels.Channel) by name, built on first use with the app's
    # configuration.
    channels: dict[str, Any] = field(default_factory=dict)
    # What this process last wrote to each channel's status indicator, and when
    # (channels.integration.record_outcome): {channel: ((outcome, error), monotonic time)}.
    status_writes: dict[str, tuple[tuple[str, str | None], float]] = field(default_factory=dict)
    # The live streams open in this process, per user (services.live.slots.StreamSlots).
    stream_slots: Any = None
    # What each watching user may do, as last read, shared by their streams (live.rights.Rights).
    viewer_rights: Any = None
    # The markup of recent events, drawn once per process (live.messages.Drawn).
    fragments: Any = None


def runtime(app: Flask | None = None) -> Runtime:
    """The Runtime of ``app``, or of the current app."""
    return (app or current_app).extensions["sendauth"]
