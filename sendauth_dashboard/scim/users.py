"""``/scim/v2/Users``: the people the identity provider manages (services.provisioning.people)."""
from flask import request
from scim2_models import UniquenessException
from sqlalchemy.exc import IntegrityError

from ..extensions import db
from ..services.provisioning import people
from ..services.provisioning.resources import User
from . import base_url, body, bp, list_answer, page_arguments, resource_answer


@bp.get("/Users")
def list_users():
    start, count = page_arguments()
    total, page = people.listing(request.args.get("filter"), start, count)
    return list_answer(User, total, start, [people.resource_of(u, base_url()) for u in page])


@bp.post("/Users")
def create_user():
    try:
        user, token = people.create(body())
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise UniquenessException(detail="There is already an account with this email or "
                                         "userName.") from None
    answered = resource_answer(people.resource_of(user, base_url()), 201)
    people.send_enrolment(user, token)
    return answered


@bp.get("/Users/<user_id>")
def get_user(user_id):
    return resource_answer(people.resource_of(people.find(user_id), base_url()))


@bp.put("/Users/<user_id>")
def replace_user(user_id):
    user = people.find(user_id)
    people.replace(user, body())
    db.session.commit()
    return resource_answer(people.resource_of(user, base_url()))


@bp.patch("/Users/<user_id>")
def patch_user(user_id):
    user = people.find(user_id)
    people.patch(user, body(), base_url())
    db.session.commit()
    return resource_answer(people.resource_of(user, base_url()))


@bp.delete("/Users/<user_id>")
def delete_user(user_id):
    people.delete(people.find(user_id))
    db.session.commit()
    return "", 204
