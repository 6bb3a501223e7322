"""Template filters."""
from datetime import timezone

import segno
from flask import current_app
from markupsafe import Markup, escape

from ..services.live.words import describe_parts, incident_link_text
from ..services.requests import risks
from ..services.requests.pagerduty_incidents import state_words


def format_datetime(value):
    """UTC, to the second: everyone on an incident call reads the same clock."""
    if value is None:
        return ""
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def iso_utc(value):
    """The ``datetime`` attribute of a ``<time>``: UTC, to the second, with a Z."""
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def duration_words(seconds):
    """A duration as people say it: "4 s", "2.5 s", "3 min 17 s", "1 h 5 min"; "–" for none."""
    if seconds is None or seconds == "":
        return "–"
    seconds = float(seconds)
    if seconds < 10 and round(seconds, 1) != round(seconds):
        return f"{seconds:.1f} s"
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        minutes, rest = divmod(whole, 60)
        return f"{minutes} min {rest} s" if rest else f"{minutes} min"
    hours, rest = divmod(round(whole / 60), 60)
    return f"{hours} h {rest} min" if rest else f"{hours} h"


def day_words(day, year=False):
    """A calendar day as people write it: "7 Dec", or "7 December 2026" with ``year``."""
    return f"{day.day} {day:%B %Y}" if year else f"{day.day} {day:%b}"


def describe_event(event, nobody=None):
    """An event's words (services.live.messages), each time in them shown as every time on a
    page is (templates/_macros/time.html): in the reader's zone, UTC on hover. ``nobody``:
    who the words name when the event has no actor."""
    moment = current_app.jinja_env.get_template("_macros/time.html").module.moment
    who = event.actor.name if event.actor else nobody
    return Markup("").join(
        part if isinstance(part, str) else moment(part.at) if part.at else part.text
        for part in describe_parts(event.kind, event.data or {}, who))


def risk_words(transaction):
    """What weakens this transaction's proof, in words (services.requests.risks)."""
    return risks.words(transaction.risks, transaction.user.name)


def risk_notes(transaction):
    """What a new user does on their first day, as quiet notes (services.requests.risks)."""
    return risks.notes(transaction.risks, transaction.user.name)


def qr_svg(text, label):
    """``text`` as a QR code: an SVG made here (segno), dark on white in light and dark mode,
    named ``label`` for screen readers. For a link to open on a phone's camera."""
    svg = segno.make(text, error="m").svg_inline(scale=5, border=4, dark="#000", light="#fff")
    return Markup(svg.replace("<svg ", f'<svg role="img" aria-label="{escape(label)}" ', 1))


def register(app):
    app.add_template_filter(qr_svg, "qr_svg")
    app.add_template_filter(format_datetime, "datetime")
    app.add_template_filter(iso_utc, "iso_utc")
    app.add_template_filter(describe_event, "describe_event")
    app.add_template_filter(duration_words, "duration")
    app.add_template_filter(day_words, "day")
    app.add_template_filter(risk_words, "risk_words")
    app.add_template_filter(risk_notes, "risk_notes")
    app.add_template_filter(incident_link_text, "incident_link_text")
    app.add_template_filter(state_words, "incident_state")
