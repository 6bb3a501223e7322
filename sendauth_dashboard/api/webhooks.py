"""``/api/v1/webhook-endpoints``: the Settings → Webhooks page's own rules for keys with the
scope ``webhooks:manage`` (admins): endpoints, their secret (shown once), rotation, a test
event, the delivery log and replays."""
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints

from ..extensions import db
from ..models import WEBHOOK_EVENT_TYPES, WebhookMessage
from ..services.webhooks import endpoints, queue
from . import bp
from .problems import Problem
from .schemas import Body, Page
from .spec import field_problem, operation

TAG = "Webhooks"
SCOPE = "webhooks:manage"
EventType = Literal[tuple(t for t in WEBHOOK_EVENT_TYPES if t != "webhook.test")]


class NewWebhookEndpoint(Body):
    url: Annotated[str, StringConstraints(min_length=1, max_length=endpoints.URL_MAX_CHARS)] = \
        Field(examples=["https://tickets.example.com/hooks/sendauth"])
    description: Annotated[str, StringConstraints(
        max_length=endpoints.DESCRIPTION_MAX_CHARS)] = ""
    events: list[EventType] = Field(min_length=1, description="The event types to send.")
    enabled: bool = True


class WebhookEndpointChange(Body):
    url: Annotated[str, StringConstraints(min_length=1,
                                          max_length=endpoints.URL_MAX_CHARS)] | None = None
    description: Annotated[str, StringConstraints(
        max_length=endpoints.DESCRIPTION_MAX_CHARS)] | None = None
    events: list[EventType] | None = Field(None, min_length=1)
    enabled: bool | None = None


class WebhookEndpoint(BaseModel):
    id: int
    url: str
    description: str
    events: list[str]
    enabled: bool
    disabled_reason: str | None
    created_at: datetime
    last_success_at: datetime | None
    failing_since: datetime | None
    previous_secret_expires_at: datetime | None = Field(
        description="Until then the secret before the last rotation signs too.")


class WebhookEndpointWithSecret(BaseModel):
    endpoint: WebhookEndpoint
    secret: str = Field(description="The signing secret (whsec_…), shown this once.")


class WebhookEndpointList(BaseModel):
    items: list[WebhookEndpoint]


class WebhookDelivery(BaseModel):
    id: int
    webhook_id: str
    type: str
    status: Literal["queued", "sending", "sent", "failed", "cancelled"]
    attempts: int
    created_at: datetime
    next_attempt_at: datetime | None
    last_http_status: int | None
    last_error: str | None


class WebhookDeliveryList(BaseModel):
    items: list[WebhookDelivery]
    next_cursor: str | None


def endpoint_out(e):
    return WebhookEndpoint(id=e.id, url=e.url, description=e.description, events=e.event_types,
                    enabled=e.enabled, disabled_reason=e.disabled_reason,
                    created_at=e.created_at, last_success_at=e.last_success_at,
                    failing_since=e.failing_since,
                    previous_secret_expires_at=e.previous_secret_expires_at)


def delivery_out(m):
    return WebhookDelivery(id=m.id, webhook_id=m.msg_id, type=m.event_type, status=m.status,
                    attempts=m.attempts, created_at=m.created_at,
                    next_attempt_at=m.next_attempt_at if m.status == "queued" else None,
                    last_http_status=m.last_http_status, last_error=m.last_error)


def _endpoint(endpoint_id):
    endpoint = endpoints.find(endpoint_id)
    if endpoint is None:
        raise Problem(404, f"There is no webhook endpoint with the id {endpoint_id}.")
    return endpoint


def _saved(action):
    try:
        result = action()
        db.session.commit()
        return result
    except endpoints.EndpointError as exc:
        db.session.rollback()
        raise field_problem(str(exc), exc.field) from None


@operation(bp, "GET", "/v1/webhook-endpoints", tag=TAG, scope=SCOPE, summary="List endpoints",
           responses={200: (WebhookEndpointList, "Every endpoint, oldest first")})
def list_endpoints(key):
    items = [endpoint_out(e) for e in endpoints.every_endpoint()]
    return 200, WebhookEndpointList(items=items), None


@operation(bp, "POST", "/v1/webhook-endpoints", tag=TAG, scope=SCOPE, body=NewWebhookEndpoint,
           summary="Add an endpoint",
           responses={201: (WebhookEndpointWithSecret, "Added: with its secret, this once")})
def create_endpoint(key, body):
    """The URL must be https:// (unless the server allows private networks) and its host not
    an internal address."""
    endpoint, secret = _saved(lambda: endpoints.create(
        body.url, body.description, body.events, body.enabled, actor=key.user))
    return 201, WebhookEndpointWithSecret(endpoint=endpoint_out(endpoint), secret=secret), None


@operation(bp, "GET", "/v1/webhook-endpoints/<int:endpoint_id>", tag=TAG, scope=SCOPE,
           summary="Read an endpoint and its health", responses={200: (WebhookEndpoint, "It")})
def get_endpoint(key, endpoint_id):
    return 200, endpoint_out(_endpoint(endpoint_id)), None


@operation(bp, "PATCH", "/v1/webhook-endpoints/<int:endpoint_id>", tag=TAG, scope=SCOPE,
           body=WebhookEndpointChange,
           summary="Change an endpoint (turning it on clears its failures)",
           responses={200: (WebhookEndpoint, "As changed")})
def change_endpoint(key, endpoint_id, body):
    e = _endpoint(endpoint_id)
    _saved(lambda: endpoints.update(
        e, body.url if body.url is not None else e.url,
        body.description if body.description is not None else e.description,
        body.events if body.events is not None else e.event_types,
        body.enabled if body.enabled is not None else e.enabled, actor=key.user))
    return 200, endpoint_out(e), None


@operation(bp, "DELETE", "/v1/webhook-endpoints/<int:endpoint_id>", tag=TAG, scope=SCOPE,
           summary="Delete an endpoint and its delivery log",
           responses={204: (None, "Deleted")})
def delete_endpoint(key, endpoint_id):
    _saved(lambda: endpoints.delete(_endpoint(endpoint_id), actor=key.user))
    return 204, None, None


@operation(bp, "POST", "/v1/webhook-endpoints/<int:endpoint_id>/rotate-secret", tag=TAG,
           scope=SCOPE, summary="Rotate the secret: both sign for a day",
           responses={201: (WebhookEndpointWithSecret, "The new secret, this once")})
def rotate_secret(key, endpoint_id):
    e = _endpoint(endpoint_id)
    secret = _saved(lambda: endpoints.rotate(e, actor=key.user))
    return 201, WebhookEndpointWithSecret(endpoint=endpoint_out(e), secret=secret), None


@operation(bp, "POST", "/v1/webhook-endpoints/<int:endpoint_id>/test", tag=TAG, scope=SCOPE,
           summary="Send a webhook.test event",
           responses={202: (WebhookDelivery, "Queued; see its deliveries for the answer")})
def send_test(key, endpoint_id):
    message = _saved(lambda: queue.queue_test(_endpoint(endpoint_id)))
    return 202, delivery_out(message), None


@operation(bp, "GET", "/v1/webhook-endpoints/<int:endpoint_id>/deliveries", tag=TAG,
           scope=SCOPE, query=Page, summary="The endpoint's deliveries, newest first",
           responses={200: (WebhookDeliveryList, "A page of deliveries")})
def list_deliveries(key, endpoint_id, query):
    _endpoint(endpoint_id)
    statement = db.select(WebhookMessage).where(WebhookMessage.endpoint_id == endpoint_id) \
        .order_by(WebhookMessage.id.desc()).limit(query.limit + 1)
    if query.cursor:
        statement = statement.where(WebhookMessage.id < int(query.cursor))
    rows = db.session.scalars(statement).all()
    shown = rows[:query.limit]
    return 200, WebhookDeliveryList(items=[delivery_out(m) for m in shown],
                             next_cursor=str(shown[-1].id) if len(rows) > query.limit
                             else None), None


@operation(bp, "POST", "/v1/webhook-endpoints/<int:endpoint_id>/deliveries/<int:delivery_id>"
           "/replay", tag=TAG, scope=SCOPE,
           summary="Send a delivery again: the same webhook-id, the current secret",
           responses={202: (WebhookDelivery, "Queued again")})
def replay_delivery(key, endpoint_id, delivery_id):
    message = db.session.get(WebhookMessage, delivery_id)
    if message is None or message.endpoint_id != _endpoint(endpoint_id).id:
        raise Problem(404, f"This endpoint has no delivery with the id {delivery_id}.")
    if not queue.replay(message):
        raise Problem(409, "This delivery is still queued or being sent.")
    db.session.commit()
    return 202, delivery_out(message), None
