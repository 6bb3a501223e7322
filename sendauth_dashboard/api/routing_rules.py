"""``/api/v1/routing-rules``: the Settings → Routing page's own rules for keys with the scope
``routing:manage`` (admins): the rules in order, adding one at the end, moving, deleting."""
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints
from sqlalchemy.exc import IntegrityError

from ..extensions import db
from ..models import RoutingRule
from ..services.approvals import tag_rules
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
    user: Email = Field(description="The email of the person such requests go to.")


class RoutingRuleMove(Body):
    direction: Literal["up", "down"]


class RoutingRuleOut(BaseModel):
    id: int
    position: int = Field(description="Rules are tried from 1 up; the first match decides.")
    key: str
    value: str
    user: Person
    created_at: datetime


class RoutingRuleList(BaseModel):
    items: list[RoutingRuleOut]


def rule_out(rule):
    return RoutingRuleOut(id=rule.id, position=rule.position, key=rule.tag_key,
                          value=rule.tag_value, created_at=rule.created_at,
                          user=Person(id=rule.user.id, email=rule.user.email,
                                      name=rule.user.name))


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
    """One tag and value has one rule: another for it is 409."""
    try:
        rule = tag_rules.add(tag_key=body.key, tag_value=body.value, user_email=body.user,
                             actor=key.user)
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
