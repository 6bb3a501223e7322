"""What the app keeps for its lifetime besides the Flask extensions, in one object.

``create_app`` builds it from the configuration and stores it as ``app.extensions["sendauth"]``;
services reach it through ``runtime()``. This module imports nothing of the app's, so any
layer may use it.
"""
from dataclasses import dataclass, field

from flask import current_app


@dataclass(eq=False)
class Runtime:
    # Encrypts stored secrets (core.secrets).
    secret_box: object
    # Carries committed events to open streams and wake-ups to dispatchers (services.live).
    broker: object
    # How many sends each rate-limited channel may make now (services.outbox).
    send_window: object
    # The web process's dispatcher once started; None in CLI commands and with DISPATCHER=off.
    dispatcher: object = None
    # Each channel's instance, built on first use with the app's configuration (channels).
    channels: dict = field(default_factory=dict)
    # What this process last wrote to each channel's status indicator, and when (channels).
    status_writes: dict = field(default_factory=dict)
    # The live streams open in this process, per user (services.live.streams.StreamSlots).
    stream_slots: object = None
    # What each watching user may do, as last read, shared by their streams (streams.Rights).
    viewer_rights: object = None


def runtime(app=None):
    """The Runtime of ``app``, or of the current app."""
    return (app or current_app).extensions["sendauth"]
