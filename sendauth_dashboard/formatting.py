"""Template filters."""
from datetime import timezone

from .services.live.messages import describe, incident_link_text
from .services.pagerduty_incidents import state_words


def format_datetime(value):
    """UTC, to the second: everyone on an incident call reads the same clock."""
    if value is None:
        return ""
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def describe_event(event):
    return describe(event.kind, event.data or {}, event.actor.name if event.actor else None)


def register(app):
    app.add_template_filter(format_datetime, "datetime")
    app.add_template_filter(describe_event, "describe_event")
    app.add_template_filter(incident_link_text, "incident_link_text")
    app.add_template_filter(state_words, "incident_state")
