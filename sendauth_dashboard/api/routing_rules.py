"""Who a request goes to, for admins' keys: ``/api/v1/routing-rules`` (scope
``routing:manage``), the Settings → Routing page's rules in order, adding one at the end,
moving, deleting; and ``/api/v1/approval-groups`` (scope ``groups:manage``), the Settings →
Approval groups page's groups."""
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints
from sqlalchemy.exc import IntegrityError

from ..extensions import db
from ..models import GROUP_NAME_MAX_CHARS, ApprovalGroup, RoutingRule
from ..services.approvals import groups, tag_rules
from . import bp
from .problems import Problem
from .schemas import Body, Email, Person
from .spec import field_problem, operation

TAG = "Routing rules"
SCOPE = "routing:manage"


class NewRoutingRule(Body):
    key: Annotated[str, StringConstraints(
        min_length=1, max_length=tag_rules.TAG_KEY_MAX_CHARS)] = Field(examples=["team"])
    value: Annotated[str, StringConstraints(
        min_length=1, max_length=tag_rules.TAG_VALUE_MAX_CHARS)] = Field(examples=["finance"])
    user: Email | None = Field(None, description="The email of the person such requests go "
                                                 "to. Give either `user` or `group`.")
    group: Annotated[str, StringConstraints(min_length=1, max_length=GROUP_NAME_MAX_CHARS)] | \
        None = Field(None, description="Instead of `user`: the approval group's name.")


class RoutingRuleMove(Body):
    direction: Literal["up", "down"]


class RoutingRuleOut(BaseModel):
    id: int
    position: int = Field(description="Rules are tried from 1 up; the first match decides.")
    key: str
    value: str
    user: Person | None
    group: str | None = Field(description="The approval group it sends to, if not a person.")
    created_at: datetime


class RoutingRuleList(BaseModel):
    items: list[RoutingRuleOut]


def rule_out(rule):
    return RoutingRuleOut(id=rule.id, position=rule.position, key=rule.tag_key,
                          value=rule.tag_value, created_at=rule.created_at,
                          group=rule.group.name if rule.group is not None else None,
                          user=None if rule.user is None else Person(
                              id=rule.user.id, email=rule.user.email, name=rule.user.name))


def _rule(rule_id):
    rule = db.session.get(RoutingRule, rule_id)
    if rule is None:
        raise Problem(404, f"There is no routing rule with the id {rule_id}.")
    return rule


@operation(bp, "GET", "/v1/routing-rules", tag=TAG, scope=SCOPE, summary="List routing rules",
           responses={200: (RoutingRuleList, "The rules, in the order they are tried")})
def list_routing_rules(key):
    return 200, RoutingRuleList(items=[rule_out(r) for r in tag_rules.in_order()]), None


@operation(bp, "POST", "/v1/routing-rules", tag=TAG, scope=SCOPE, body=NewRoutingRule,
           summary="Add a routing rule, tried after the others",
           responses={201: (RoutingRuleOut, "The rule")})
def add_routing_rule(key, body):
    """One tag and value has one rule: another for it is 409. Give `user` or `group`."""
    try:
        rule = tag_rules.add(tag_key=body.key, tag_value=body.value, user_email=body.user,
                             group_name=body.group, actor=key.user)
        db.session.commit()
    except tag_rules.RuleError as exc:
        db.session.rollback()
        status = 409 if isinstance(exc, tag_rules.RuleTaken) else 422
        field = {"tag_key": "key", "tag_value": "value"}.get(exc.field, exc.field)
        raise field_problem(str(exc), field, status=status) from None
    except IntegrityError:
        db.session.rollback()
        raise Problem(409, "Another rule was added at the same moment: try again.") from None
    return 201, rule_out(rule), None


@operation(bp, "POST", "/v1/routing-rules/<int:rule_id>/move", tag=TAG, scope=SCOPE,
           body=RoutingRuleMove, summary="Move a rule up or down one place",
           responses={200: (RoutingRuleList, "The rules, in their new order")})
def move_routing_rule(key, rule_id, body):
    """At the top (up) or the bottom (down) already: nothing changes."""
    tag_rules.move(_rule(rule_id), body.direction, actor=key.user)
    db.session.commit()
    return 200, RoutingRuleList(items=[rule_out(r) for r in tag_rules.in_order()]), None


@operation(bp, "DELETE", "/v1/routing-rules/<int:rule_id>", tag=TAG, scope=SCOPE,
           summary="Delete a routing rule", responses={204: (None, "Deleted")})
def delete_routing_rule(key, rule_id):
    tag_rules.remove(_rule(rule_id), actor=key.user)
    db.session.commit()
    return 204, None, None


GROUPS_TAG = "Approval groups"
GROUPS_SCOPE = "groups:manage"


class NewApprovalGroup(Body):
    name: Annotated[str, StringConstraints(min_length=1, max_length=GROUP_NAME_MAX_CHARS)] = \
        Field(examples=["Security team"])
    members: Annotated[list[Email], Field(min_length=1, max_length=groups.MAX_MEMBERS)] = \
        Field(description="The emails of the people who may approve.")
    threshold: Annotated[int, Field(ge=1, le=groups.MAX_MEMBERS)] = Field(
        description="How many members must verify: 1 to the number of members.")


class ApprovalGroupChange(Body):
    name: Annotated[str, StringConstraints(min_length=1, max_length=GROUP_NAME_MAX_CHARS)] | \
        None = None
    members: Annotated[list[Email], Field(min_length=1, max_length=groups.MAX_MEMBERS)] | \
        None = Field(None, description="The whole new list of members' emails.")
    threshold: Annotated[int, Field(ge=1, le=groups.MAX_MEMBERS)] | None = None


class ApprovalGroupOut(BaseModel):
    id: int
    name: str
    members: list[Person]
    threshold: int
    created_at: datetime


class ApprovalGroupList(BaseModel):
    items: list[ApprovalGroupOut]


def group_out(group):
    return ApprovalGroupOut(id=group.id, name=group.name, threshold=group.threshold,
                            created_at=group.created_at,
                            members=[Person(id=m.id, email=m.email, name=m.name)
                                     for m in group.members])


def _group(group_id):
    group = db.session.get(ApprovalGroup, group_id)
    if group is None:
        raise Problem(404, f"There is no approval group with the id {group_id}.")
    return group


def _saved(change):
    """Run ``change`` (a groups service call) and commit; its refusal as a problem."""
    try:
        group = change()
        db.session.commit()
    except groups.GroupError as exc:
        db.session.rollback()
        status = 409 if isinstance(exc, groups.GroupTaken) else 422
        raise field_problem(str(exc), exc.field, status=status) from None
    except IntegrityError:
        db.session.rollback()
        raise Problem(409, "Another group took that name at the same moment: try again.") \
            from None
    return group


@operation(bp, "GET", "/v1/approval-groups", tag=GROUPS_TAG, scope=GROUPS_SCOPE,
           summary="List approval groups",
           responses={200: (ApprovalGroupList, "The groups, by name")})
def list_approval_groups(key):
    return 200, ApprovalGroupList(items=[group_out(g) for g in groups.in_order()]), None


@operation(bp, "POST", "/v1/approval-groups", tag=GROUPS_TAG, scope=GROUPS_SCOPE,
           body=NewApprovalGroup, summary="Add an approval group",
           responses={201: (ApprovalGroupOut, "The group")})
def add_approval_group(key, body):
    """Another group with the same name (whatever its case) is 409; a threshold above the
    number of members, or a member who is not an active user, 422."""
    group = _saved(lambda: groups.create(name=body.name, member_emails=body.members,
                                         threshold=body.threshold, actor=key.user))
    return 201, group_out(group), None


@operation(bp, "GET", "/v1/approval-groups/<int:group_id>", tag=GROUPS_TAG,
           scope=GROUPS_SCOPE, summary="Read an approval group",
           responses={200: (ApprovalGroupOut, "The group")})
def get_approval_group(key, group_id):
    return 200, group_out(_group(group_id)), None


@operation(bp, "PATCH", "/v1/approval-groups/<int:group_id>", tag=GROUPS_TAG,
           scope=GROUPS_SCOPE, body=ApprovalGroupChange,
           summary="Change an approval group's name, members or threshold",
           responses={200: (ApprovalGroupOut, "The group as changed")})
def change_approval_group(key, group_id, body):
    """The fields given change; the threshold stays from 1 to the number of members.
    Requests already sent to the group keep the members and threshold they were sent
    with."""
    group = _group(group_id)
    emails = body.members if body.members is not None else [m.email for m in group.members]
    group = _saved(lambda: groups.change(
        group, name=body.name or group.name, member_emails=emails,
        threshold=body.threshold or group.threshold, actor=key.user))
    return 200, group_out(group), None


@operation(bp, "DELETE", "/v1/approval-groups/<int:group_id>", tag=GROUPS_TAG,
           scope=GROUPS_SCOPE, summary="Delete an approval group",
           responses={204: (None, "Deleted")})
def delete_approval_group(key, group_id):
    """While a routing rule sends to the group: 422 naming the rule."""
    group = _group(group_id)
    _saved(lambda: groups.remove(group, actor=key.user))
    return 204, None, None
