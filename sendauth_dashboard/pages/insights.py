"""``GET /insights`` (reviewers and admins): figures and charts of a range of days in the
reader's time zone, their tables, CSV.

The zone is the ``tz`` query parameter, else the ``tz`` cookie that static/js/insights.js
writes from the browser's own zone, else UTC; the page says which it used."""
from flask import Blueprint, abort, render_template, request
from flask_wtf import FlaskForm
from wtforms import DateField

from .. import channels
from ..models import TRANSACTION_STATES
from ..services.reports import insights
from .auth import role_required
from .csv_export import csv_response
from .forms import apply_service_error

bp = Blueprint("insights", __name__)
ZONE_COOKIE = "tz"


class RangeForm(FlaskForm):
    """A first and a last day, read from the query string (the presets are links)."""

    class Meta:
        csrf = False

    since = DateField("From")
    until = DateField("To")


def reader_zone(args, cookies):
    """(zone, its name) from the query string, the browser's cookie, or UTC."""
    for name in (args.get("tz"), cookies.get(ZONE_COOKIE)):
        zone = insights.zone_named(name)
        if zone is not None:
            return zone, insights.zone_label(zone)
    return insights.zone_named("UTC"), "UTC"


@bp.get("/insights")
@role_required("reviewer")
def index():
    form = RangeForm(request.args)
    args = request.args
    zone, zone_name = reader_zone(args, request.cookies)
    try:
        day_range = insights.parse_range(days=args.get("days", ""), since=args.get("since", ""),
                                         until=args.get("until", ""), zone=zone)
    except insights.RangeError as exc:
        apply_service_error(form, exc, fallback_field="since")
        return render_template("insights/index.html", form=form, tables=[], charts={},
                               range_args={"tz": zone_name}, data=None, zone_name=zone_name,
                               presets=insights.PRESETS), 400
    data = insights.gather(day_range)
    tables = insights.tables(data)
    range_args = ({"days": day_range.preset} if day_range.preset else
                  {"since": day_range.first.isoformat(), "until": day_range.last.isoformat()})
    range_args["tz"] = zone_name
    if args.get("format") == "csv":
        wanted = [t for t in tables if t[0] == args.get("table")]
        if not wanted:
            abort(404)
        name, _, header, rows = wanted[0]
        stamp = f"{day_range.first.isoformat()}_{day_range.last.isoformat()}"
        return csv_response(f"sendauth-{name}-{stamp}.csv", [header, *rows])
    return render_template("insights/index.html", form=form, tables=tables, data=data,
                           charts=charts(data), range_args=range_args, zone_name=zone_name,
                           presets=insights.PRESETS, durations=insights.DURATION_COLUMNS)


def charts(data):
    """What each chart draws: JSON in a data- attribute for static/js/insights.js. ``unit``
    "duration": seconds, written as "3 min 17 s"; gaps (None) stay gaps."""
    days = [d.isoformat() for d in data.range.days]
    answer = data.answer_daily
    delivery_time = data.delivery_time
    outcomes = data.delivery_outcomes
    return {
        "outcomes": {
            "type": "bar", "stacked": True, "labels": days, "dates": True,
            "x": "Day sent", "y": "Requests",
            "datasets": [{"label": state, "key": state,
                          "data": [data.outcomes[d][state] for d in data.range.days]}
                         for state in TRANSACTION_STATES],
        },
        "answer-time": {
            "type": "line", "labels": days, "dates": True, "unit": "duration",
            "x": "Day sent", "y": "Time to answer",
            "datasets": [
                {"label": "median", "key": "median",
                 "data": [answer[d][0] if d in answer else None for d in data.range.days]},
                {"label": "90th percentile", "key": "p90",
                 "data": [answer[d][1] if d in answer else None for d in data.range.days]},
            ],
        },
        "answer-distribution": {
            "type": "bar", "labels": [label for label, _ in data.answer_buckets],
            "x": "Time to answer", "y": "Requests answered",
            "datasets": [{"label": "answered", "key": "answered",
                          "data": [count for _, count in data.answer_buckets]}],
        },
        "delivery-time": {
            "type": "bar", "unit": "duration",
            "labels": [channels.label(c) for c in delivery_time],
            "x": "Channel", "y": "Queued to accepted",
            "datasets": [
                {"label": "median", "key": "median",
                 "data": [v[0] for v in delivery_time.values()]},
                {"label": "90th percentile", "key": "p90",
                 "data": [v[1] for v in delivery_time.values()]},
            ],
        },
        "delivery-outcomes": {
            "type": "bar", "stacked": True, "labels": [channels.label(c) for c in outcomes],
            "x": "Channel", "y": "Notifications",
            "datasets": [{"label": status, "key": status,
                          "data": [v[status] for v in outcomes.values()]}
                         for status in insights.DELIVERY_OUTCOMES],
        },
        "requestors": _people_chart(data.requestors, "Requestor"),
        "users": _people_chart(data.users, "User"),
    }


def _people_chart(people, who):
    return {"type": "bar", "horizontal": True, "labels": [name for name, _, _ in people],
            "x": "Requests", "y": who,
            "datasets": [{"label": "requests", "key": "requests",
                          "data": [count for _, _, count in people]}]}
