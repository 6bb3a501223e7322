"""SCIM 2.0 (RFC 7643/7644) at ``/scim/v2``: the identity provider (Entra ID, Okta) keeps the
people list. Thin views over services.provisioning; ``Authorization: Bearer scim_…`` (the
token of Settings → Sign-in) and nothing else: no session, no CSRF token, no form. Answers
and errors are ``application/scim+json``; an error is a SCIM Error whose detail says what
was wrong."""
import json

from flask import Blueprint, Response, current_app, g, request
from scim2_models import (
    Error,
    InvalidValueException,
    ListResponse,
    SCIMException,
    UnauthorizedException,
)

from ..extensions import db
from ..services.provisioning import resources, tokens

bp = Blueprint("scim", __name__, url_prefix="/scim/v2")
MEDIA_TYPE = "application/scim+json"
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="SendAuth SCIM"'}


def base_url():
    return f"{current_app.config['BASE_URL']}{bp.url_prefix}"


def answer(body, status=200, headers=None):
    return Response(json.dumps(body), status=status, mimetype=MEDIA_TYPE, headers=headers)


def error_answer(status, detail, scim_type=None, headers=None):
    error = Error(status=status, scim_type=scim_type or None, detail=detail)
    return answer(error.model_dump(mode="json"), status, headers)


def is_scim_request():
    return request.path == bp.url_prefix or request.path.startswith(bp.url_prefix + "/")


def body():
    """The request's JSON (Entra and Okta send application/scim+json)."""
    payload = request.get_json(force=True, silent=True)
    if payload is None:
        raise InvalidValueException(detail="The request body must be JSON: a SCIM resource "
                                           "or PatchOp.")
    return payload


@bp.before_request
def authenticate():
    kind, _, secret = request.headers.get("Authorization", "").partition(" ")
    if kind.lower() != "bearer" or not secret.strip():
        raise UnauthorizedException(detail=(
            "Send the SCIM token: Authorization: Bearer scim_… (an admin issues it under "
            "Settings → Sign-in)."))
    token = tokens.find(secret.strip())
    if token is None:
        raise UnauthorizedException(detail=(
            "This SCIM token is unknown or was revoked: an admin issues the current one under "
            "Settings → Sign-in."))
    g.scim_token = token
    if db.session.dirty:
        db.session.commit()  # its last use


@bp.errorhandler(SCIMException)
def scim_error(exc):
    db.session.rollback()
    headers = CHALLENGE if exc.status == 401 else None
    return error_answer(exc.status, exc.detail, exc.scim_type, headers)


def page_arguments():
    """(startIndex, count) of a list request: 1-based, at most resources.MAX_COUNT."""
    def number(name, default):
        text = request.args.get(name)
        if text is None:
            return default
        try:
            return int(text)
        except ValueError:
            raise InvalidValueException(detail=f"{name} must be a whole number.") from None
    start = max(1, number("startIndex", 1))
    count = min(max(0, number("count", resources.MAX_COUNT)), resources.MAX_COUNT)
    return start, count


def asked_for(model):
    """The request's ``attributes`` and ``excludedAttributes`` for ``model``."""
    return resources.response_parameters(model, request.args.get("attributes"),
                                         request.args.get("excludedAttributes"))


def list_answer(model, total, start, resources_out):
    listed = ListResponse[model](total_results=total, start_index=start,
                                 items_per_page=len(resources_out),
                                 resources=resources_out or None)
    return answer(resources.dump(listed, asked_for(model)))


def resource_answer(resource, status=200):
    headers = {"ETag": resource.meta.version} if resource.meta and resource.meta.version \
        else {}
    if status == 201:
        headers["Location"] = resource.meta.location
    return answer(resources.dump(resource, asked_for(type(resource))), status, headers)


def register(app):
    """The identity provider posts no form and holds no session: no CSRF token to check."""
    from ..extensions import csrf

    csrf.exempt(bp)
    app.register_blueprint(bp)



from . import discovery, groups, users  # noqa: E402,F401  (views register themselves)
