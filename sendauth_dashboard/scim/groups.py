"""``/scim/v2/Groups``: the identity provider's groups and their members
(services.provisioning.groups); a group an admin mapped to a role gives it."""
from flask import request
from scim2_models import Group

from ..extensions import db
from ..services.provisioning import groups
from . import base_url, body, bp, list_answer, page_arguments, resource_answer


@bp.get("/Groups")
def list_groups():
    start, count = page_arguments()
    total, page = groups.listing(request.args.get("filter"), start, count)
    return list_answer(Group, total, start, [groups.resource_of(g, base_url()) for g in page])


@bp.post("/Groups")
def create_group():
    group = groups.create(body())
    db.session.commit()
    return resource_answer(groups.resource_of(group, base_url()), 201)


@bp.get("/Groups/<public_id>")
def get_group(public_id):
    return resource_answer(groups.resource_of(groups.find(public_id), base_url()))


@bp.put("/Groups/<public_id>")
def replace_group(public_id):
    group = groups.find(public_id)
    groups.replace(group, body())
    db.session.commit()
    return resource_answer(groups.resource_of(group, base_url()))


@bp.patch("/Groups/<public_id>")
def patch_group(public_id):
    group = groups.find(public_id)
    groups.patch(group, body(), base_url())
    db.session.commit()
    return resource_answer(groups.resource_of(group, base_url()))


@bp.delete("/Groups/<public_id>")
def delete_group(public_id):
    groups.delete_group(groups.find(public_id))
    db.session.commit()
    return "", 204
