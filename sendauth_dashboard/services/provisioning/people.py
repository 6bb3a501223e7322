"""The people the identity provider manages over SCIM: its ``/Users``.

Every account is a SCIM User (so an existing account is found by ``userName eq "<its
email>"`` and linked, as Entra and Okta match before they create), except one SCIM deleted:
deleting deactivates the account, never removes it, and SCIM no longer finds it (404). What
the directory says of a person beyond the account (names, emails, externalId) is kept as it
sent it (``ScimPerson.attributes``), so what it reads back is what it wrote.

The account's email is set when SCIM creates it, from the primary email (else userName), and
is not changed by later updates: it is where requests go, and a change of where requests go
needs the person's own passkey (DESIGN.md, Trust). The name follows the directory.
Deactivation (``active: false``, a delete) is services.provisioning.access's one step. A new
person gets an enrolment link: SCIM proves the directory record, not the person, so their
first passkey still comes from a link (``enrolment_for``).
"""
from scim2_models import (
    Context,
    GroupMembership,
    InvalidValueException,
    NotFoundException,
    PatchOp,
    UniquenessException,
)
from sqlalchemy import exists, func, or_, select

from ...core.ids import MAX_ROW_ID
from ...core.text import control_character
from ...extensions import db
from ...models import EnrolmentLink, Passkey, ScimGroup, ScimGroupMember, ScimPerson, utcnow
from ...models import User as Account
from ..people import accounts, enrolment, passkeys
from . import access, resources
from .resources import User

# Kept as the directory sent them; the rest comes from the account (id, active, groups).
OWN_ATTRIBUTES = ("id", "meta", "groups", "schemas")


def location(base_url, user):
    return f"{base_url}/Users/{user.id}"


def find(user_id):
    """The account behind a SCIM id that SCIM may see (not deleted), else 404."""
    user = db.session.get(Account, int(user_id)) \
        if str(user_id).isdigit() and int(user_id) <= MAX_ROW_ID else None
    record = db.session.get(ScimPerson, user.id) if user is not None else None
    if user is None or (record is not None and record.deleted_at is not None):
        raise NotFoundException(detail=f"There is no user with the id {user_id}.")
    return user


def visible():
    """What SCIM sees of the accounts: all but those SCIM deleted."""
    return select(Account).outerjoin(ScimPerson, ScimPerson.user_id == Account.id).where(
        ScimPerson.deleted_at.is_(None))


def listing(filter_text, start_index, count):
    """(total, the accounts of the page), by id; ``filter_text`` as resources.equality_filter
    reads it."""
    query = visible()
    wanted = resources.equality_filter(User, filter_text)
    if wanted is not None:
        attribute, value = wanted
        if attribute == "userName":
            query = query.where(or_(ScimPerson.user_name_key == value.lower(), (
                ScimPerson.user_id.is_(None) & (Account.email == value.lower()))))
        elif attribute == "externalId":
            query = query.where(ScimPerson.attributes["externalId"].as_string() == value)
        else:
            query = query.where(Account.id == (
                int(value) if value.isdigit() and int(value) <= MAX_ROW_ID else -1))
    total = db.session.scalar(select(func.count()).select_from(query.subquery()))
    page = db.session.scalars(query.order_by(Account.id).offset(start_index - 1)
                              .limit(count)).all()
    return total, page


def resource_of(user, base_url):
    """The SCIM User of an account: what the directory wrote, and what the account holds."""
    record = db.session.get(ScimPerson, user.id)
    if record is not None:
        attributes = dict(record.attributes)
        created, modified = record.created_at, max(record.updated_at, record.created_at)
    else:
        attributes = {"userName": user.email, "displayName": user.name,
                      "emails": [{"value": user.email, "primary": True, "type": "work"}]}
        created = modified = user.created_at
    resource = User.model_validate(attributes, scim_policy=resources.POLICY)
    resource.id = str(user.id)
    # What the account is, where the directory says anything of it (it may remove active).
    resource.active = user.active if "active" in attributes else None
    resource.groups = [GroupMembership(value=g.public_id, display=g.display_name,
                                       ref=f"{base_url}/Groups/{g.public_id}")
                       for g in groups_of(user)] or None
    resource.meta = resources.meta("User", location(base_url, user), created, modified)
    return resource


def groups_of(user):
    return db.session.scalars(select(ScimGroup).join(
        ScimGroupMember, ScimGroupMember.group_id == ScimGroup.id)
        .where(ScimGroupMember.user_id == user.id).order_by(ScimGroup.display_name)).all()


def create(payload, now=None):
    """A new account from a SCIM User (uncommitted), or the account SCIM deleted before
    with this email, restored. Returns (the account, the enrolment link's token or None)."""
    now = now or utcnow()
    resource = resources.read(User, payload, Context.RESOURCE_CREATION_REQUEST)
    if resource.active is None:
        resource.active = True  # a new account is active unless the directory says not
    email = _email_of(resource)
    _check_user_name_free(resource.user_name)
    user = accounts.find_by_email(email)
    if user is None:
        user = accounts.create_user(email=email, name=_name_of(resource), role="member",
                                    password=None, actor=None, via="scim")
        record = ScimPerson(user_id=user.id, user_name=resource.user_name,
                            user_name_key=resource.user_name.lower(), attributes={},
                            created_at=now)
        db.session.add(record)
    else:
        record = db.session.get(ScimPerson, user.id)
        if record is None or record.deleted_at is None:
            raise UniquenessException(detail=(
                f"There is already an account for {email}: find it with "
                f'filter=userName eq "{email}" and update it rather than create it.'))
        record.deleted_at, record.created_at = None, now
    _write(user, record, resource, now)
    return user, enrolment_for(user)


def replace(user, payload, now=None):
    """Replace what the directory says of ``user`` (PUT; uncommitted)."""
    resource = resources.read(User, payload, Context.RESOURCE_REPLACEMENT_REQUEST)
    _write(user, record_of(user, now), resource, now or utcnow())


def patch(user, payload, base_url, now=None):
    """Apply a SCIM PATCH to ``user`` (uncommitted), whatever Entra or Okta spell it as."""
    operations = resources.read(PatchOp[User], payload, Context.RESOURCE_PATCH_REQUEST)
    resource = resource_of(user, base_url)
    if operations.patch(resource, resources.POLICY):
        _write(user, record_of(user, now), resource, now or utcnow())


def delete(user, now=None):
    """SCIM's delete: deactivated (the one step), out of every group, and no longer found by
    SCIM; the account and its history stay. Uncommitted."""
    now = now or utcnow()
    record = record_of(user, now)
    set_active(user, record, False, "directory", now)
    record.deleted_at = record.updated_at = now
    db.session.execute(ScimGroupMember.__table__.delete().where(
        ScimGroupMember.user_id == user.id))


def record_of(user, now):
    """The directory's record of ``user``, made from the account the first time SCIM
    changes an account it did not create."""
    record = db.session.get(ScimPerson, user.id)
    if record is None:
        record = ScimPerson(user_id=user.id, user_name=user.email, user_name_key=user.email,
                            attributes={}, created_at=user.created_at or now)
        db.session.add(record)
    return record


def _write(user, record, resource, now):
    if resource.user_name.lower() != (record.user_name_key or ""):
        _check_user_name_free(resource.user_name, user)
    record.user_name, record.user_name_key = resource.user_name, resource.user_name.lower()
    record.attributes = {key: value for key, value in resources.dump(resource).items()
                         if key not in OWN_ATTRIBUTES}
    record.updated_at = now
    name = _name_of(resource)
    if name != user.name:
        user.name = name
    if resource.active is not None:
        set_active(user, record, resource.active, "directory", now)


def set_active(user, record, active, why, now):
    """The directory's say on whether ``user`` may act: deactivating through the one step
    (access.set_active), reactivating only what SCIM deactivated (an admin's deactivation
    here is undone only by an admin). ``why``: "directory" or "groups"."""
    if active and not user.active and record.deactivated_by is None:
        return
    if active and record.deactivated_by not in (None, why):
        return  # the directory deactivated them: joining a group does not undo it
    try:
        changed = access.set_active(user, active, actor=None, via="scim", now=now)
    except accounts.AccountError as exc:
        raise InvalidValueException(detail=str(exc)) from None
    if changed:
        record.deactivated_by = None if active else why


def _email_of(resource):
    """The account's email: the primary email, else the first, else userName."""
    emails = sorted(resource.emails or [], key=lambda e: not e.primary)
    candidates = [e.value for e in emails if e.value] + [resource.user_name]
    for candidate in candidates:
        try:
            return accounts.normalize_email(candidate)
        except accounts.AccountError:
            continue
    raise InvalidValueException(detail=(
        "SendAuth reaches people by email: give the user an email address in emails "
        "(primary) or as userName."))


def _name_of(resource):
    """The name shown to the people they send requests to: displayName, else the name, else
    userName; on one line, at most MAX_NAME_LENGTH characters."""
    name = resource.display_name or (resource.name and (resource.name.formatted or " ".join(
        p for p in (resource.name.given_name, resource.name.family_name) if p))) \
        or resource.user_name
    name = " ".join(name.split())[:accounts.MAX_NAME_LENGTH]
    if control_character(name):
        raise InvalidValueException(detail="The name must be on one line, with no control "
                                           "characters.")
    return name


def _check_user_name_free(user_name, user=None):
    key = user_name.lower()
    taken = select(ScimPerson.user_id).where(ScimPerson.user_name_key == key,
                                             ScimPerson.deleted_at.is_(None))
    if user is not None:
        taken = taken.where(ScimPerson.user_id != user.id)
    if db.session.scalar(select(exists(taken))):
        raise UniquenessException(detail=f"The userName {user_name!r} is another user's.")


def enrolment_for(user):
    """A new, active person's invitation (their password and first passkey), or None: the
    token, to email once committed (``send_enrolment``)."""
    if not user.active or passkeys.has_passkey(user):
        return None
    return enrolment.issue(user, actor=None, kind="invitation")


def send_enrolment(user, token):
    """Email the link where email is set up; otherwise the person is listed for admins
    (``awaiting_enrolment``), who issue one from the users page. Commits."""
    if token is not None:
        enrolment.email(user, token, "invitation")


def awaiting_enrolment():
    """Active people SCIM created who have no passkey yet, with when their last link
    expires(d) (None when none was issued), newest first: for the admins' list."""
    latest = select(func.max(EnrolmentLink.expires_at)).where(
        EnrolmentLink.user_id == Account.id, EnrolmentLink.used_at.is_(None)) \
        .correlate(Account).scalar_subquery()
    rows = db.session.execute(
        select(Account, latest).join(ScimPerson, ScimPerson.user_id == Account.id)
        .where(Account.active.is_(True), ScimPerson.deleted_at.is_(None),
               ~exists(select(Passkey.id).where(Passkey.user_id == Account.id)))
        .order_by(ScimPerson.created_at.desc())).all()
    return [tuple(row) for row in rows]

