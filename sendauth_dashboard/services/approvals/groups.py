"""Approval groups (Settings → Approval groups, admins; ``/api/v1/approval-groups``): a name,
its members and a threshold from 1 to the number of members. A request sent to a group
(services.approvals.group_requests) keeps the members and threshold it was sent with, so a
change here never changes a request already sent. Every change is an audit event."""
from sqlalchemy import func, select, update

from ...core import event_kinds as kinds
from ...core import event_log
from ...core.errors import ServiceError
from ...core.text import control_character
from ...extensions import db
from ...models import GROUP_NAME_MAX_CHARS, ApprovalGroup, RoutingRule, Transaction
from ..people import accounts

MAX_MEMBERS = 50


class GroupError(ServiceError):
    """A group cannot be made or changed as asked; the message says what to fix."""


class GroupTaken(GroupError):
    """Another group has the name already."""


def in_order():
    return db.session.scalars(select(ApprovalGroup).order_by(ApprovalGroup.name)).all()


def find(group_id):
    return db.session.get(ApprovalGroup, group_id)


def find_by_name(name):
    """The group of that name, whatever its case and spacing; None (as for NUL, which no name
    holds and PostgreSQL refuses to compare) when there is none."""
    name = " ".join((name or "").split())
    if not name or control_character(name):
        return None
    return db.session.scalar(select(ApprovalGroup).where(
        func.lower(ApprovalGroup.name) == name.lower()))


def _name(name, group=None):
    name = " ".join((name or "").split())
    if not name:
        raise GroupError("Enter the group's name, such as Security team.", "name")
    if len(name) > GROUP_NAME_MAX_CHARS:
        raise GroupError(f"A group's name has at most {GROUP_NAME_MAX_CHARS} characters; this "
                         f"one has {len(name)}.", "name")
    if bad := control_character(name):
        raise GroupError(f"The name contains {bad}: write it on one line.", "name")
    same = find_by_name(name)
    if same is not None and same is not group:
        raise GroupTaken(f"There is a group named {same.name!r} already: choose another name, "
                         "or change that group.", "name")
    return name


def _members(emails):
    """The active users with these emails, each once; GroupError naming any that is not."""
    wanted = list(dict.fromkeys(e.strip().lower() for e in emails if e and e.strip()))
    if not wanted:
        raise GroupError("Add at least one member: the email of each person who may approve.",
                         "members")
    if len(wanted) > MAX_MEMBERS:
        raise GroupError(f"A group has at most {MAX_MEMBERS} members; this one has "
                         f"{len(wanted)}.", "members")
    members, unknown = [], []
    for email in wanted:
        user = accounts.find_by_email(email)
        if user is None or not user.active:
            unknown.append(email)
        else:
            members.append(user)
    if unknown:
        raise GroupError(f"No active user has the email {', '.join(unknown)}. Check the "
                         "address, or invite them under Settings → Users first.", "members")
    return members


def _threshold(threshold, members):
    try:
        threshold = int(threshold)
    except (TypeError, ValueError):
        threshold = 0
    if not 1 <= threshold <= len(members):
        raise GroupError(f"The threshold is how many members must approve: a number from 1 to "
                         f"{len(members)} (the number of members).", "threshold")
    return threshold


def _words(group):
    emails = ", ".join(m.email for m in group.members)
    return f"{group.threshold} of {len(group.members)} must approve ({emails})"


def create(*, name, member_emails, threshold, actor):
    """A new group (uncommitted)."""
    name = _name(name)
    members = _members(member_emails)
    group = ApprovalGroup(name=name, members=members, threshold=_threshold(threshold, members),
                          created_by_id=actor.id if actor else None)
    db.session.add(group)
    event_log.record(kinds.APPROVAL_GROUP_CREATED, actor=actor,
                     data={"group": name, "changes": [_words(group)]})
    return group


def change(group, *, name, member_emails, threshold, actor):
    """The group's new name, members and threshold (uncommitted); requests already sent keep
    theirs."""
    before = (group.name, _words(group))
    name = _name(name, group)
    members = _members(member_emails)
    group.threshold = _threshold(threshold, members)
    group.name = name
    group.members = members
    changes = []
    if name != before[0]:
        changes.append(f"renamed from {before[0]!r}")
    if _words(group) != before[1]:
        changes.append(f"{_words(group)}, was {before[1]}")
    if changes:
        event_log.record(kinds.APPROVAL_GROUP_CHANGED, actor=actor,
                         data={"group": name, "changes": changes})
    return group


def remove(group, *, actor):
    """Delete the group (uncommitted); GroupError while a routing rule sends to it. Requests
    sent to it keep its name."""
    rule = db.session.scalar(select(RoutingRule).where(RoutingRule.group_id == group.id)
                             .order_by(RoutingRule.position).limit(1))
    if rule is not None:
        raise GroupError(f"Routing rule {rule.position} ({rule}) sends requests to this group: "
                         "delete that rule first under Settings → Routing.", "group")
    db.session.execute(update(Transaction).where(Transaction.group_id == group.id)
                       .values(group_id=None).execution_options(synchronize_session=False))
    db.session.delete(group)
    event_log.record(kinds.APPROVAL_GROUP_DELETED, actor=actor,
                     data={"group": group.name, "changes": [_words(group)]})
