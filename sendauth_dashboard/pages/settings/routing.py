"""Routing rules (admins): a request's tag and value → the person it goes to, tried in order."""
from flask import abort, flash, redirect, render_template, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy.exc import IntegrityError
from wtforms import EmailField, HiddenField, StringField, SubmitField

from ...extensions import db
from ...models import RoutingRule
from ...services.approvals import tag_rules
from ..auth import role_required
from ..forms import apply_service_error
from . import bp


class RuleForm(FlaskForm):
    key = StringField("Tag", description="The tag's name, such as team.",
                          render_kw={"maxlength": tag_rules.TAG_KEY_MAX_CHARS})
    value = StringField("Value", description="Its value, such as finance.",
                            render_kw={"maxlength": tag_rules.TAG_VALUE_MAX_CHARS})
    user = EmailField("Goes to", description="The email of the person the request is sent to.")
    submit = SubmitField("Add rule")


class RuleActionForm(FlaskForm):
    direction = HiddenField()


def _rule_or_404(rule_id):
    rule = db.session.get(RoutingRule, rule_id)
    if rule is None:
        abort(404)
    return rule


@bp.route("/routing", methods=["GET", "POST"])
@role_required("admin")
def routing():
    form = RuleForm()
    if form.validate_on_submit():
        try:
            rule = tag_rules.add(tag_key=form.key.data, tag_value=form.value.data,
                                 user_email=form.user.data, actor=current_user)
            db.session.commit()
        except tag_rules.RuleError as exc:
            db.session.rollback()
            apply_service_error(form, exc, "key", renamed={"tag_key": "key",
                                                           "tag_value": "value"})
        except IntegrityError:
            db.session.rollback()
            form.key.errors.append("Someone added a rule at the same moment: try again.")
        else:
            flash(f"Added rule {rule.position}: {rule} goes to {rule.user.name}.", "success")
            return redirect(url_for("settings.routing"))
    return render_template("settings/routing.html", form=form, rules=tag_rules.in_order(),
                           actions=RuleActionForm()), 400 if form.errors else 200


@bp.post("/routing/<int:rule_id>/move")
@role_required("admin")
def move_rule(rule_id):
    rule = _rule_or_404(rule_id)
    form = RuleActionForm()
    if not form.validate_on_submit() or form.direction.data not in ("up", "down"):
        abort(400)
    tag_rules.move(rule, form.direction.data, actor=current_user)
    db.session.commit()
    return redirect(url_for("settings.routing"))


@bp.post("/routing/<int:rule_id>/delete")
@role_required("admin")
def delete_rule(rule_id):
    rule = _rule_or_404(rule_id)
    if not RuleActionForm().validate_on_submit():
        abort(400)
    tag_rules.remove(rule, actor=current_user)
    db.session.commit()
    flash(f"Deleted the rule {rule}.", "success")
    return redirect(url_for("settings.routing"))
