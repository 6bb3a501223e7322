"""``/api/v1/users`` and ``/api/v1/audit``: the users page's and the audit log's own rules
(registrars and admins; a registrar manages everyone but admins; the last active admin
stays; a link is shown once or emailed)."""
from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ..core.ids import MAX_ROW_ID
from ..extensions import db
from ..models import User
from ..services.people import accounts, enrolment
from ..services.provisioning import access
from ..services.reports import audit, health
from . import bp, schemas
from .problems import Problem
from .spec import field_problem, operation
from .transactions import event_list

TAG = "Users"


def user_out(user, reach=None):
    reach = reach or health.reach_of([user])[user.id]
    return schemas.User(
        id=user.id, email=user.email, name=user.name, role=user.role, active=user.active,
        passkeys=reach.passkeys, reachable_through=list(reach.channels),
        created_at=user.created_at, last_sign_in_at=user.last_sign_in_at)


def _user(user_id):
    user = db.session.get(User, user_id)
    if user is None:
        raise Problem(404, f"There is no user with the id {user_id}.")
    return user


@operation(bp, "GET", "/v1/users", tag=TAG, scope="users:read", query=schemas.Page,
           summary="List users", responses={200: (schemas.UserList, "A page of users, by id")})
def list_users(key, query):
    statement = select(User).order_by(User.id).limit(query.limit + 1)
    if query.cursor:
        statement = statement.where(User.id > min(int(query.cursor), MAX_ROW_ID))
    rows = db.session.scalars(statement).all()
    shown = rows[:query.limit]
    reach = health.reach_of(shown)
    return 200, schemas.UserList(items=[user_out(u, reach[u.id]) for u in shown],
                                 next_cursor=str(shown[-1].id) if len(rows) > query.limit
                                 else None), None


@operation(bp, "GET", "/v1/users/<int:user_id>", tag=TAG, scope="users:read",
           summary="Read a user: role, passkeys, the channels that reach them",
           responses={200: (schemas.User, "The user")})
def get_user(key, user_id):
    return 200, user_out(_user(user_id)), None


@operation(bp, "POST", "/v1/users", tag=TAG, scope="users:write", body=schemas.Invitation,
           summary="Invite a user", responses={201: (schemas.Link, "Invited: the link, once")})
def invite_user(key, body):
    """The invitation link is where they choose their password and first passkey: returned
    this once, or emailed (`send_email`); a failed email returns it instead."""
    try:
        user = accounts.create_user(email=body.email, name=body.name, role=body.role,
                                    password=None, actor=key.user)
        token = enrolment.issue(user, actor=key.user, kind="invitation")
        db.session.commit()
    except accounts.BeyondYourRole as exc:
        db.session.rollback()
        raise field_problem(str(exc), exc.field, status=403) from None
    except accounts.AccountError as exc:
        db.session.rollback()
        raise field_problem(str(exc), exc.field) from None
    except IntegrityError:
        db.session.rollback()
        raise field_problem("There is already an account with this email.", "email",
                            status=409) from None
    return 201, _link(user, token, "invitation", body.send_email), None


@operation(bp, "PATCH", "/v1/users/<int:user_id>", tag=TAG, scope="users:write",
           body=schemas.UserChange, summary="Change a user's role, or (de)activate them",
           responses={200: (schemas.User, "The user as changed")})
def change_user(key, user_id, body):
    """The last active admin cannot be demoted or deactivated, nor can you deactivate
    yourself: 409. Deactivating ends their sessions, streams and API keys at once, and
    cancels the requests waiting for their answer."""
    user = _user(user_id)
    try:
        if body.role is not None:
            accounts.change_role(user, body.role, actor=key.user)
        if body.active is not None:
            access.set_active(user, body.active, actor=key.user)
        db.session.commit()
    except accounts.BeyondYourRole as exc:
        db.session.rollback()
        raise field_problem(str(exc), exc.field, status=403) from None
    except accounts.AccountError as exc:
        db.session.rollback()
        raise field_problem(str(exc), exc.field, status=409) from None
    return 200, user_out(user), None


@operation(bp, "POST", "/v1/users/<int:user_id>/enrolment-link", tag=TAG, scope="users:write",
           body=schemas.LinkSent, summary="Issue an enrolment link (a passkey reset if they "
                                          "have passkeys)",
           responses={201: (schemas.Link, "The link, once")})
def enrolment_link(key, user_id, body):
    user = _user(user_id)
    try:
        token = enrolment.issue(user, actor=key.user)
        db.session.commit()
    except enrolment.EnrolmentError as exc:
        db.session.rollback()
        raise Problem(409, str(exc)) from None
    return 201, _link(user, token, "passkey", body.send_email), None


def _link(user, token, kind, send_email):
    error = enrolment.email(user, token, kind) if send_email else None
    emailed = send_email and error is None
    return schemas.Link(user=user_out(user), kind=kind,
                        url=None if emailed else enrolment.url(token), emailed=emailed,
                        email_error=error,
                        expires_in_seconds=current_app.config["ENROLMENT_TTL_SECONDS"])


@operation(bp, "GET", "/v1/audit", tag="Audit", scope="audit:read", query=schemas.Page,
           summary="The audit log, newest first",
           responses={200: (schemas.EventList, "A page of events")})
def audit_log(key, query):
    """Every event that is not about one request, as on Settings → Audit log."""
    rows, _ = audit.page(audit.parse_filters(), before_id=int(query.cursor) if query.cursor
                         else None, page_size=query.limit + 1)
    return 200, event_list(rows, query.limit), None
