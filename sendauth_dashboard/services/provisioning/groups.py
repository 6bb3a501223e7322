"""The identity provider's groups (SCIM ``/Groups``), and the roles they give.

An admin may map a group to a role (Settings → Sign-in): its members then have the highest
role their mapped groups give. A person who was given a role by a group and leaves the last
such group is deactivated (the one step of services.provisioning.access): leaving the group
that gave access is how a directory takes it away. Joining one again reactivates them, if
that is what deactivated them. Members are the people SCIM sees (``people.visible``).
"""
import secrets

from scim2_models import (
    Context,
    Group,
    GroupMember,
    InvalidValueException,
    NotFoundException,
    PatchOp,
    UniquenessException,
)
from sqlalchemy import delete, exists, func, select

from ...core import event_kinds as kinds
from ...core import event_log
from ...extensions import db
from ...models import ROLES, ScimGroup, ScimGroupMember, User, role_rank, utcnow
from ..people import accounts
from . import people, resources


def location(base_url, group):
    return f"{base_url}/Groups/{group.public_id}"


def find(public_id):
    group = db.session.scalar(select(ScimGroup).where(ScimGroup.public_id == public_id))
    if group is None:
        raise NotFoundException(detail=f"There is no group with the id {public_id}.")
    return group


def every_group():
    return db.session.scalars(select(ScimGroup).order_by(ScimGroup.display_name)).all()


def listing(filter_text, start_index, count):
    query = select(ScimGroup)
    wanted = resources.equality_filter(Group, filter_text)
    if wanted is not None:
        attribute, value = wanted
        column = {"displayName": ScimGroup.display_name, "externalId": ScimGroup.external_id,
                  "id": ScimGroup.public_id}[attribute]
        query = query.where(func.lower(column) == value.lower()
                            if attribute == "displayName" else column == value)
    total = db.session.scalar(select(func.count()).select_from(query.subquery()))
    page = db.session.scalars(query.order_by(ScimGroup.id).offset(start_index - 1)
                              .limit(count)).all()
    return total, page


def members_of(group):
    return db.session.scalars(select(User).join(
        ScimGroupMember, ScimGroupMember.user_id == User.id)
        .where(ScimGroupMember.group_id == group.id).order_by(User.id)).all()


def resource_of(group, base_url):
    resource = Group(id=group.public_id, display_name=group.display_name,
                     external_id=group.external_id)
    rows = db.session.execute(select(User, ScimGroupMember.display).join(
        ScimGroupMember, ScimGroupMember.user_id == User.id)
        .where(ScimGroupMember.group_id == group.id).order_by(User.id)).all()
    resource.members = [GroupMember(value=str(u.id), display=display, type="User",
                                    ref=people.location(base_url, u))
                        for u, display in rows] or None
    resource.meta = resources.meta("Group", location(base_url, group), group.created_at,
                                   max(group.updated_at, group.created_at))
    return resource


def create(payload, now=None):
    now = now or utcnow()
    resource = resources.read(Group, payload, Context.RESOURCE_CREATION_REQUEST)
    group = ScimGroup(public_id=secrets.token_hex(16), created_at=now, updated_at=now)
    _write(group, resource, now)
    return group


def replace(group, payload, now=None):
    resource = resources.read(Group, payload, Context.RESOURCE_REPLACEMENT_REQUEST)
    _write(group, resource, now or utcnow())


def patch(group, payload, base_url, now=None):
    operations = resources.read(PatchOp[Group], payload, Context.RESOURCE_PATCH_REQUEST)
    resource = resource_of(group, base_url)
    if operations.patch(resource, resources.POLICY):
        _write(group, resource, now or utcnow())


def delete_group(group, now=None):
    """The group goes; its members lose the role it gave (uncommitted)."""
    leaving = members_of(group)
    db.session.execute(delete(ScimGroupMember).where(ScimGroupMember.group_id == group.id))
    db.session.delete(group)
    db.session.flush()
    for user in leaving:
        apply_roles(user, now or utcnow())


def set_role(group, role, *, actor, now=None):
    """Map ``group`` to ``role`` (None: no role) and apply it to its members (uncommitted).
    False when it gave that role already."""
    if role is not None and role not in ROLES:
        raise accounts.AccountError(f"Unknown role {role!r}: choose one of "
                                    f"{', '.join(ROLES)}.", "role")
    if role == group.role:
        return False
    event_log.record(kinds.SCIM_GROUP_ROLE_CHANGED, actor=actor, data={
        "group": group.display_name, "from": group.role, "to": role})
    group.role = role
    db.session.flush()
    try:
        for user in members_of(group):
            apply_roles(user, now or utcnow())
    except InvalidValueException as exc:
        raise accounts.AccountError(exc.detail, "role") from None
    return True


def _write(group, resource, now):
    name = " ".join((resource.display_name or "").split())
    if not name or len(name) > 256:
        raise InvalidValueException(detail="A group needs a displayName of 1 to 256 "
                                           "characters.")
    taken = select(ScimGroup.id).where(func.lower(ScimGroup.display_name) == name.lower())
    if group.id is not None:
        taken = taken.where(ScimGroup.id != group.id)
    if db.session.scalar(select(exists(taken))):
        raise UniquenessException(detail=f"There is already a group named {name!r}.")
    group.display_name, group.external_id, group.updated_at = name, resource.external_id, now
    if group.id is None:
        db.session.add(group)
        db.session.flush()
    _set_members(group, resource.members or [], now)


def _set_members(group, members, now):
    wanted = {}
    for member in members:
        try:
            wanted[people.find(member.value).id] = member.display
        except NotFoundException:
            raise InvalidValueException(detail=(
                f"There is no user with the id {member.value!r} to make a member of "
                f"{group.display_name!r}: create the user first.")) from None
    current = {m.user_id: m for m in db.session.scalars(
        select(ScimGroupMember).where(ScimGroupMember.group_id == group.id))}
    for user_id, display in wanted.items():
        if user_id in current:
            current[user_id].display = display
        else:
            db.session.add(ScimGroupMember(group_id=group.id, user_id=user_id, display=display))
    gone = set(current) - set(wanted)
    if gone:
        db.session.execute(delete(ScimGroupMember).where(
            ScimGroupMember.group_id == group.id, ScimGroupMember.user_id.in_(gone)))
    db.session.flush()
    if group.role is not None:
        for user_id in gone | (set(wanted) - set(current)):
            apply_roles(db.session.get(User, user_id), now)


def apply_roles(user, now):
    """Give ``user`` the highest role of their mapped groups; when they are in none any
    more but were given a role by one, deactivate them (uncommitted)."""
    given = [g.role for g in people.groups_of(user) if g.role is not None]
    record = people.record_of(user, now)
    try:
        if given:
            accounts.change_role(user, max(given, key=role_rank), actor=None, via="scim")
            record.role_from_groups = True
            if record.deactivated_by == "groups":
                people.set_active(user, record, True, "groups", now)
        elif record.role_from_groups:
            record.role_from_groups = False
            people.set_active(user, record, False, "groups", now)
    except accounts.AccountError as exc:
        raise InvalidValueException(detail=str(exc)) from None
