"""The audit log (admins): who changed what, outside any one transaction."""
from flask import render_template, request
from flask_wtf import FlaskForm
from wtforms import DateField, SelectField, StringField

from ...core.ids import MAX_EVENT_ID, row_id
from ...services.reports import audit
from ..auth import role_required
from ..csv_export import csv_response
from ..forms import apply_service_error, choices
from . import bp


class AuditFilterForm(FlaskForm):
    """Read from the query string."""

    class Meta:
        csrf = False

    kind = SelectField("Kind", choices=choices({"": "Every kind", **audit.KIND_GROUP_LABELS}))
    actor = StringField("Who", description="Part of a name or an email address.")
    since = DateField("From (UTC day)")
    until = DateField("To (UTC day)")


def _filters(form):
    """The filters, or (no filter, 400) with the error beside the field at fault."""
    args = request.args
    try:
        return audit.parse_filters(kind=args.get("kind", ""), actor=args.get("actor", ""),
                                   since=args.get("since", ""), until=args.get("until", "")), 200
    except audit.AuditFilterError as exc:
        apply_service_error(form, exc)
        return None, 400


def _args(filters):
    return {name: value for name, value in (
        ("kind", filters.kind), ("actor", filters.actor),
        ("since", filters.since and filters.since.isoformat()),
        ("until", filters.until and filters.until.isoformat())) if value}


@bp.get("/audit")
@role_required("admin")
def audit_log():
    form = AuditFilterForm(request.args)
    filters, status = _filters(form)
    if filters is None:
        return render_template("settings/audit.html", form=form, rows=[], older=None,
                               args={}, first_page=True), status
    before = request.args.get("before", type=lambda v: row_id(v, MAX_EVENT_ID))
    if request.args.get("format") == "csv":
        return csv_response("sendauth-audit.csv", audit.export_rows(filters))
    rows, older = audit.page(filters, before_id=before)
    return render_template("settings/audit.html", form=form, rows=rows, older=older,
                           args=_args(filters), first_page=before is None)
