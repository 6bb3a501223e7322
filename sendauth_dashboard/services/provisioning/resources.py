"""What SCIM's resources are made of here: the models of ``scim2-models`` and how leniently
they read what identity providers send.

Entra ID and Okta depart from RFC 7644 in known ways (integrations-facts.md): operations
spelled "Replace", booleans sent as the strings "False" and "True", PATCH without a path or
with a filter that matches nothing yet, ``remove`` with a value that says what to remove.
``POLICY`` accepts them; ``scim2-models`` itself takes the capitalised operations and the
strings for booleans. Attributes no schema here declares are ignored, not refused: Entra
sends its own extension attributes to every application.
"""
import json
from typing import Annotated

import scim2_models
from pydantic import ValidationError
from scim2_models import (
    Context,
    Error,
    Group,
    InvalidFilterException,
    InvalidValueException,
    Meta,
    Required,
    ResponseParameters,
    SCIMException,
    ScimPolicy,
)


class Email(scim2_models.Email):
    value: Annotated[str | None, Required.true] = None


class User(scim2_models.User):
    """SCIM's User as served here: an email is required, since it is where requests go
    (Entra ID and Okta send the directory's mail attribute as ``emails``)."""

    emails: Annotated[list[Email] | None, Required.true] = None


POLICY = ScimPolicy(unknown=ScimPolicy.Unknown.ignore,
                    remove_value_as_filter=ScimPolicy.RemoveValue.apply,
                    unmatched_path_filter=ScimPolicy.UnmatchedPathFilter.create)

# A page of a list: at most this many resources, whatever ``count`` asks.
MAX_COUNT = 200
# The attributes a request may filter on (``filter=userName eq "…"``), per resource.
FILTERABLE = {User: ("userName", "externalId", "id"), Group: ("displayName", "externalId", "id")}


class ScimInputError(SCIMException):
    """A request the identity provider sent cannot be read: ``error`` is the SCIM Error."""

    def __init__(self, error):
        super().__init__(detail=error.detail)
        self.status, self.scim_type = int(error.status or 400), error.scim_type or ""


def read(model, payload, context):
    """``payload`` read as ``model`` (a resource or a PatchOp) for ``context``; a payload
    that is not one raises a SCIM error that says which attribute is wrong."""
    if not isinstance(payload, dict):
        raise InvalidValueException(detail="The request body must be a JSON object.")
    try:
        return model.model_validate(payload, scim_ctx=context, scim_policy=POLICY)
    except ValidationError as exc:
        raise ScimInputError(Error.from_validation_errors(exc)[0]) from None


def dump(resource, parameters=None):
    """The resource as a response body; ``parameters`` (``response_parameters``): only the
    attributes the request asked for."""
    return resource.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE, scim_policy=POLICY,
                               response_parameters=parameters)


def response_parameters(model, attributes, excluded_attributes):
    """A request's ``attributes`` and ``excludedAttributes`` (comma-separated) for ``model``,
    or None when it asked for neither."""
    if not attributes and not excluded_attributes:
        return None
    try:
        return ResponseParameters[model].model_validate(
            {"attributes": attributes or None, "excludedAttributes": excluded_attributes or None},
            scim_policy=POLICY)
    except ValidationError as exc:
        raise ScimInputError(Error.from_validation_errors(exc)[0]) from None


def meta(resource_type, location, created, last_modified):
    return Meta(resource_type=resource_type, location=location, created=created,
                last_modified=last_modified,
                version=f'W/"{int(last_modified.timestamp() * 1000)}"')


def equality_filter(model, text):
    """(attribute, value) of a filter ``<attribute> eq "<value>"`` on one of the model's
    FILTERABLE attributes (what Entra and Okta send to match a person or group), or None for
    no filter; anything else is refused, saying what works."""
    if not text:
        return None
    allowed = FILTERABLE[model]
    refusal = InvalidFilterException(detail=(
        f"This service filters only on one of {', '.join(allowed)} with eq, such as "
        f'{allowed[0]} eq "value"; the filter was {text!r}.'))
    try:
        attribute, value = _parse_eq(text)
    except ValueError:
        raise refusal from None
    match = next((a for a in allowed if a.lower() == attribute.lower()), None)
    if match is None:
        raise refusal
    return match, value


def _parse_eq(text):
    """``attribute eq "value"``, the value a JSON string (RFC 7644 §3.4.2.2)."""
    attribute, operator, rest = text.strip().split(None, 2)
    if operator.lower() != "eq" or not rest.startswith('"'):
        raise ValueError(text)
    value = json.loads(rest)
    if not isinstance(value, str):
        raise ValueError(text)
    return attribute, value
