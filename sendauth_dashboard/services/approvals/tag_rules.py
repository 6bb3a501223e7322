"""Routing rules (Settings → Routing, admins): a request sent with tags (``{"team":
"finance"}``) and no user goes to the person (or approval group) named by the first rule, in
their order, whose tag key and value are among the request's tags. Keys and values match
whatever their case.

Not the channel routing of ``services.requests.routing``, which picks the channels that reach a
user once it is known who.
"""
from sqlalchemy import func, select

from ...core import event_kinds as kinds
from ...core import event_log
from ...core.errors import ServiceError
from ...core.text import control_character
from ...extensions import db
from ...models import RoutingRule
from ..people import accounts
from . import groups

MAX_TAGS = 10
TAG_KEY_MAX_CHARS = 64
TAG_VALUE_MAX_CHARS = 128


class RuleError(ServiceError):
    """A rule cannot be added or changed as asked; the message says why."""


class RuleTaken(RuleError):
    """Another rule routes the same tag and value already."""


class NoRuleMatches(ServiceError):
    """No rule matches a request's tags; the message names the tags and the rules there are."""


def in_order():
    return db.session.scalars(select(RoutingRule).order_by(RoutingRule.position)).all()


def _clean(text, limit, what, field):
    text = (text or "").strip().lower()
    if not text:
        raise RuleError(f"Enter the tag's {what}, such as "
                        f"{'team' if what == 'key' else 'finance'}.", field)
    if len(text) > limit:
        raise RuleError(f"A tag's {what} has at most {limit} characters; this one has "
                        f"{len(text)}.", field)
    if bad := control_character(text):
        raise RuleError(f"The tag's {what} contains {bad}: write it on one line.", field)
    return text


def clean_tags(tags):
    """A request's tags, lower-cased; RuleError (field ``tags``) when they cannot be used."""
    if len(tags) > MAX_TAGS:
        raise RuleError(f"A request has at most {MAX_TAGS} tags; this one has {len(tags)}.",
                        "tags")
    return {_clean(key, TAG_KEY_MAX_CHARS, "key", "tags"):
            _clean(value, TAG_VALUE_MAX_CHARS, "value", "tags") for key, value in tags.items()}


def match(tags):
    """The first rule, in order, whose tag is among ``tags``; NoRuleMatches when none is."""
    tags = clean_tags(tags)
    for rule in in_order():
        if tags.get(rule.tag_key) == rule.tag_value:
            return rule
    shown = ", ".join(f"{k}={v}" for k, v in tags.items()) or "no tags"
    known = ", ".join(str(rule) for rule in in_order())
    raise NoRuleMatches(
        f"No routing rule matches {shown}. "
        + (f"The rules route {known}. " if known else "There are no routing rules yet. ")
        + "Ask an admin to add one under Settings → Routing, or send the request to a user.",
        "tags")


def describe(rule):
    """How the timeline names the rule that chose the person or group."""
    return f"{rule.position}: {rule} → {rule.target}"


def _target(user_email, group_name):
    """(user, None) or (None, group) for a new rule; RuleError unless exactly one is named
    and exists."""
    user_email, group_name = (user_email or "").strip(), (group_name or "").strip()
    if bool(user_email) == bool(group_name):
        raise RuleError("Name either a person (their email) or an approval group, not both "
                        "and not neither.", "user")
    if group_name:
        group = groups.find_by_name(group_name)
        if group is None:
            raise RuleError(f"There is no approval group named {group_name!r}. Check the "
                            "name, or add it under Settings → Approval groups first.", "group")
        return None, group
    user = accounts.find_by_email(user_email)
    if user is None or not user.active:
        raise RuleError(f"There is no active user with the email {user_email!r}. Check the "
                        "address, or invite them under Settings → Users first.", "user")
    return user, None


def add(*, tag_key, tag_value, user_email=None, group_name=None, actor):
    """A new rule, tried after the others (uncommitted), sending to a person or a group."""
    tag_key = _clean(tag_key, TAG_KEY_MAX_CHARS, "key", "tag_key")
    tag_value = _clean(tag_value, TAG_VALUE_MAX_CHARS, "value", "tag_value")
    user, group = _target(user_email, group_name)
    same = db.session.scalar(select(RoutingRule).where(RoutingRule.tag_key == tag_key,
                                                       RoutingRule.tag_value == tag_value))
    if same is not None:
        raise RuleTaken(f"Rule {same.position} routes {same} already, to {same.target}: "
                        "delete it first to route that tag elsewhere.", "tag_value")
    last = db.session.scalar(select(func.max(RoutingRule.position))) or 0
    rule = RoutingRule(position=last + 1, tag_key=tag_key, tag_value=tag_value, user=user,
                       group=group, created_by_id=actor.id if actor else None)
    db.session.add(rule)
    _record(actor, f"added {tag_key}={tag_value} → {rule.target} as rule {last + 1}")
    return rule


def remove(rule, *, actor):
    """Delete the rule (uncommitted); the ones after it move up."""
    later = db.session.scalars(select(RoutingRule).where(RoutingRule.position > rule.position)
                               .order_by(RoutingRule.position)).all()
    db.session.delete(rule)
    db.session.flush()
    for other in later:
        other.position -= 1
        db.session.flush()
    _record(actor, f"deleted {rule} → {rule.target}")


def move(rule, direction, *, actor):
    """Swap the rule with the one before (``up``) or after (``down``); False at either end."""
    step = -1 if direction == "up" else 1
    other = db.session.scalar(select(RoutingRule).where(
        RoutingRule.position == rule.position + step))
    if other is None:
        return False
    first, second = rule.position, other.position
    rule.position = 0  # out of the way of the unique position while the two swap
    db.session.flush()
    other.position = first
    db.session.flush()
    rule.position = second
    _record(actor, f"moved {rule} from {first} to {second}")
    return True


def _record(actor, change):
    event_log.record(kinds.SETTINGS_ROUTING_CHANGED, actor=actor, data={"changes": [change]})
