"""The organisation's messages (admins): the email subject and body, the SMS body, the Slack
text; a preview for a sample request that follows the typing; back to the default."""
from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import StringField, SubmitField, TextAreaField

from ...channels import message_templates as templates
from ...extensions import db
from ...services.messages import wording
from ..auth import role_required
from . import bp

PLACEHOLDER_HELP = "Placeholders: " + templates.known_list() + "."


class MessagesForm(FlaskForm):
    email_subject = StringField(templates.FIELDS["email_subject"].label,
                                description="One line. " + PLACEHOLDER_HELP)
    email_body = TextAreaField(templates.FIELDS["email_body"].label, render_kw={"rows": 9},
                               description="Must contain {link}. " + PLACEHOLDER_HELP)
    sms_body = TextAreaField(templates.FIELDS["sms_body"].label, render_kw={"rows": 5},
                             description="Must contain {link}. A long message or context is "
                                         "cut to fit 4 segments; the link never is.")
    slack_text = TextAreaField(templates.FIELDS["slack_text"].label, render_kw={"rows": 5},
                               description="Must contain {link}. Shown as written: nothing in "
                                           "it, or in what people type, becomes formatting.")
    submit = SubmitField("Save messages")


def _texts(form):
    return {name: form[name].data for name in templates.FIELDS}


@bp.route("/messages", methods=["GET", "POST"])
@role_required("admin")
def messages():
    form = MessagesForm(data=wording.current()) if request.method == "GET" else MessagesForm()
    if form.validate_on_submit():
        try:
            changes = wording.save(_texts(form), actor=current_user)
            db.session.commit()
        except wording.MessagesRefused as exc:
            db.session.rollback()
            for name, error in exc.errors.items():
                form[name].errors = [*form[name].errors, error]
        else:
            flash("Saved: " + "; ".join(changes) + "." if changes else "Nothing changed.",
                  "success" if changes else "info")
            return redirect(url_for("settings.messages"))
    texts = _texts(form) if request.method == "POST" else wording.current()
    return render_template("settings/messages.html", form=form,
                           preview=wording.preview(texts), customised=wording.customised(),
                           fields=templates.FIELDS, placeholders=templates.PLACEHOLDERS
                           ), 400 if form.errors else 200


@bp.post("/messages/preview")
@role_required("admin")
def messages_preview():
    """The preview alone, for the templates as typed: the page fetches it as they change."""
    form = MessagesForm()
    if not form.validate_on_submit():
        abort(400)
    return render_template("settings/_messages_preview.html",
                           preview=wording.preview(_texts(form)))


@bp.post("/messages/<field_name>/default")
@role_required("admin")
def message_default(field_name):
    field = templates.FIELDS.get(field_name)
    if field is None:
        abort(404)
    if not MessagesForm().validate_on_submit():
        abort(400)
    changed = wording.reset(field_name, actor=current_user)
    db.session.commit()
    flash(f"The {field.label.lower()} is SendAuth's default again." if changed
          else f"The {field.label.lower()} was already the default.",
          "success" if changed else "info")
    return redirect(url_for("settings.messages"))
