"""Who a request goes to (admins): routing rules, a request's tag and value → the person or
approval group it goes to, tried in order; and the approval groups themselves (a name, members,
a threshold)."""
from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy.exc import IntegrityError
from wtforms import EmailField, HiddenField, SelectField, StringField, SubmitField, TextAreaField

from ...extensions import db
from ...models import GROUP_NAME_MAX_CHARS, RoutingRule
from ...services.approvals import groups, tag_rules
from ..auth import role_required
from ..forms import apply_service_error
from . import bp


class RuleForm(FlaskForm):
    key = StringField("Tag", description="The tag's name, such as team.",
                          render_kw={"maxlength": tag_rules.TAG_KEY_MAX_CHARS})
    value = StringField("Value", description="Its value, such as finance.",
                            render_kw={"maxlength": tag_rules.TAG_VALUE_MAX_CHARS})
    user = EmailField("Goes to a person", description="The email of the person the request "
                      "is sent to; or leave it empty and pick a group.")
    group = SelectField("Or to an approval group", validate_choice=False)
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
    form.group.choices = [("", "No group: to the person")] + [
        (g.name, g.name) for g in groups.in_order()]
    if form.validate_on_submit():
        try:
            rule = tag_rules.add(tag_key=form.key.data, tag_value=form.value.data,
                                 user_email=form.user.data, group_name=form.group.data,
                                 actor=current_user)
            db.session.commit()
        except tag_rules.RuleError as exc:
            db.session.rollback()
            apply_service_error(form, exc, "key", renamed={"tag_key": "key",
                                                           "tag_value": "value"})
        except IntegrityError:
            db.session.rollback()
            form.key.errors.append("Someone added a rule at the same moment: try again.")
        else:
            flash(f"Added rule {rule.position}: {rule} goes to {rule.target}.", "success")
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


class GroupForm(FlaskForm):
    name = StringField("Name", description="Such as Security team: what requestors pick.",
                       render_kw={"maxlength": GROUP_NAME_MAX_CHARS})
    members = TextAreaField("Members", description="The email of each person who may approve, "
                                                   "one a line.", render_kw={"rows": 4})
    threshold = StringField("Approvals needed", description="How many members must verify: "
                            "from 1 to the number of members. One deny denies the request.",
                            render_kw={"inputmode": "numeric", "maxlength": 3})
    submit = SubmitField("Save group")


def _save_group(form, change):
    """Run ``change`` with the form's values and commit; the error beside its field."""
    try:
        group = change(name=form.name.data, member_emails=(form.members.data or "").replace(
            ",", "\n").splitlines(), threshold=form.threshold.data, actor=current_user)
        db.session.commit()
    except groups.GroupError as exc:
        db.session.rollback()
        apply_service_error(form, exc, "name")
        return None
    except IntegrityError:
        db.session.rollback()
        form.name.errors.append("Someone added a group with that name at the same moment.")
        return None
    return group


@bp.route("/approval-groups", methods=["GET", "POST"])
@role_required("admin")
def approval_groups():
    form = GroupForm()
    if form.validate_on_submit() and (group := _save_group(form, groups.create)) is not None:
        flash(f"Added the approval group {group.name}.", "success")
        return redirect(url_for("settings.approval_groups"))
    return render_template("settings/approval_groups.html", form=form, groups=groups.in_order(),
                           editing=None), 400 if form.errors else 200


@bp.route("/approval-groups/<int:group_id>", methods=["GET", "POST"])
@role_required("admin")
def approval_group(group_id):
    group = groups.find(group_id) or abort(404)
    form = GroupForm()
    if request.method == "GET":
        form.name.data, form.threshold.data = group.name, str(group.threshold)
        form.members.data = "\n".join(m.email for m in group.members)
    elif form.validate_on_submit() and _save_group(
            form, lambda **values: groups.change(group, **values)) is not None:
        flash(f"Saved the approval group {group.name}. Requests already sent keep the "
              "members and threshold they were sent with.", "success")
        return redirect(url_for("settings.approval_groups"))
    return render_template("settings/approval_groups.html", form=form, groups=groups.in_order(),
                           editing=group), 400 if form.errors else 200


@bp.post("/approval-groups/<int:group_id>/delete")
@role_required("admin")
def delete_approval_group(group_id):
    group = groups.find(group_id) or abort(404)
    if not RuleActionForm().validate_on_submit():
        abort(400)
    try:
        groups.remove(group, actor=current_user)
        db.session.commit()
    except groups.GroupError as exc:
        db.session.rollback()
        flash(str(exc), "error")
    else:
        flash(f"Deleted the approval group {group.name}.", "success")
    return redirect(url_for("settings.approval_groups"))
