"""Template filters."""
from datetime import timezone


def format_datetime(value):
    """UTC, to the second: everyone on an incident call reads the same clock."""
    if value is None:
        return ""
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def register(app):
    app.add_template_filter(format_datetime, "datetime")
