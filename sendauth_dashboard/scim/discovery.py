"""What the identity provider reads first: ``ServiceProviderConfig``, ``ResourceTypes`` and
``Schemas`` (RFC 7644 §4), made from the same scim2-models resources the other views use."""
from scim2_models import (
    AuthenticationScheme,
    Bulk,
    ChangePassword,
    ETag,
    Filter,
    Group,
    NotFoundException,
    NotImplementedException,
    Patch,
    ResourceType,
    Schema,
    ServiceProviderConfig,
    Sort,
)

from ..services.provisioning import resources
from ..services.provisioning.resources import User
from . import base_url, bp, list_answer, resource_answer

MODELS = {"User": User, "Group": Group}


def _resource_types():
    return [ResourceType.from_resource(model) for model in MODELS.values()]


def _schemas():
    return [model.to_schema() for model in MODELS.values()]


def _located(resource, kind, name):
    resource.meta = resources.Meta(resource_type=kind, location=f"{base_url()}/{kind}s/{name}"
                                   if kind != "ServiceProviderConfig"
                                   else f"{base_url()}/{kind}")
    return resource


@bp.get("/ServiceProviderConfig")
def service_provider_config():
    config = ServiceProviderConfig(
        documentation_uri=None,
        patch=Patch(supported=True), bulk=Bulk(supported=False, max_operations=0,
                                                max_payload_size=0),
        filter=Filter(supported=True, max_results=resources.MAX_COUNT),
        change_password=ChangePassword(supported=False), sort=Sort(supported=False),
        etag=ETag(supported=False),
        authentication_schemes=[AuthenticationScheme(
            type="oauthbearertoken", name="Bearer token", primary=True,
            description="The SCIM token an admin issues under Settings → Sign-in.")])
    return resource_answer(_located(config, "ServiceProviderConfig", ""))


@bp.get("/ResourceTypes")
def resource_types():
    found = [_located(r, "ResourceType", r.id) for r in _resource_types()]
    return list_answer(ResourceType, len(found), 1, found)


@bp.get("/ResourceTypes/<name>")
def resource_type(name):
    for found in _resource_types():
        if found.id == name:
            return resource_answer(_located(found, "ResourceType", found.id))
    raise NotFoundException(detail=f"There is no resource type {name!r}: there are "
                                   f"{', '.join(MODELS)}.")


@bp.get("/Schemas")
def schemas():
    found = [_located(s, "Schema", s.id) for s in _schemas()]
    return list_answer(Schema, len(found), 1, found)


@bp.get("/Schemas/<path:schema_id>")
def schema(schema_id):
    for found in _schemas():
        if found.id == schema_id:
            return resource_answer(_located(found, "Schema", found.id))
    raise NotFoundException(detail=f"There is no schema {schema_id!r}.")


@bp.post("/.search")
def search_every_type():
    raise NotImplementedException(detail="Search one resource type at a time: GET /Users or "
                                         "/Groups with filter=.")
