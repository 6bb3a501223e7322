"""``GET /insights`` (reviewers and admins): charts of a range of days, their tables, CSV."""
from flask import Blueprint, abort, render_template, request
from flask_wtf import FlaskForm
from wtforms import DateField, SelectField

from .. import channels
from ..models import TRANSACTION_STATES
from ..services.reports import insights
from .auth import role_required
from .csv_export import csv_response
from .forms import choices

bp = Blueprint("insights", __name__)


class RangeForm(FlaskForm):
    """Read from the query string."""

    class Meta:
        csrf = False

    days = SelectField("Range", choices=choices(
        {str(n): f"Last {n} days" for n in insights.PRESETS}), default=str(insights.DEFAULT_DAYS))
    since = DateField("Or from (UTC day)")
    until = DateField("To (UTC day)")


@bp.get("/insights")
@role_required("reviewer")
def index():
    form = RangeForm(request.args)
    args = request.args
    try:
        day_range = insights.parse_range(days=args.get("days", ""), since=args.get("since", ""),
                                         until=args.get("until", ""))
    except insights.RangeError as exc:
        form[exc.field].errors = [str(exc)]
        return render_template("insights/index.html", form=form, tables=[], charts={},
                               range_args={}, data=None), 400
    data = insights.gather(day_range)
    tables = insights.tables(data)
    range_args = ({"days": day_range.preset} if day_range.preset else
                  {"since": day_range.first.isoformat(), "until": day_range.last.isoformat()})
    if args.get("format") == "csv":
        wanted = [t for t in tables if t[0] == args.get("table")]
        if not wanted:
            abort(404)
        name, _, header, rows = wanted[0]
        stamp = f"{day_range.first.isoformat()}_{day_range.last.isoformat()}"
        return csv_response(f"sendauth-{name}-{stamp}.csv", [header, *rows])
    return render_template("insights/index.html", form=form, tables=tables, data=data,
                           charts=charts(data), range_args=range_args)


def charts(data):
    """What each chart draws: JSON in a data- attribute for static/js/insights.js."""
    days = [d.isoformat() for d in data.range.days]
    answer = data.answer_daily
    delivery_time = data.delivery_time
    outcomes = data.delivery_outcomes
    return {
        "outcomes": {
            "type": "bar", "stacked": True, "labels": days,
            "datasets": [{"label": state, "key": state,
                          "data": [data.outcomes[d][state] for d in data.range.days]}
                         for state in TRANSACTION_STATES],
        },
        "answer-time": {
            "type": "line", "labels": days, "unit": "s",
            "datasets": [
                {"label": "median", "key": "median",
                 "data": [answer[d][0] if d in answer else None for d in data.range.days]},
                {"label": "90th percentile", "key": "p90",
                 "data": [answer[d][1] if d in answer else None for d in data.range.days]},
            ],
        },
        "answer-distribution": {
            "type": "bar", "labels": [label for label, _ in data.answer_buckets],
            "datasets": [{"label": "answered", "key": "answered",
                          "data": [count for _, count in data.answer_buckets]}],
        },
        "delivery-time": {
            "type": "bar", "unit": "s",
            "labels": [channels.label(c) for c in delivery_time],
            "datasets": [
                {"label": "median", "key": "median",
                 "data": [v[0] for v in delivery_time.values()]},
                {"label": "90th percentile", "key": "p90",
                 "data": [v[1] for v in delivery_time.values()]},
            ],
        },
        "delivery-outcomes": {
            "type": "bar", "stacked": True, "labels": [channels.label(c) for c in outcomes],
            "datasets": [{"label": status, "key": status,
                          "data": [v[status] for v in outcomes.values()]}
                         for status in insights.DELIVERY_OUTCOMES],
        },
        "requestors": _people_chart(data.requestors),
        "users": _people_chart(data.users),
    }


def _people_chart(people):
    return {"type": "bar", "horizontal": True, "labels": [name for name, _, _ in people],
            "datasets": [{"label": "requests", "key": "requests",
                          "data": [count for _, _, count in people]}]}
