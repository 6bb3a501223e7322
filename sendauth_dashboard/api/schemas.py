"""What the API takes and gives, as Pydantic models: the one source of both the checks on each
request and response (``api.spec``) and the OpenAPI document (``/api/v1/openapi.json``)."""
from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from ..models import ROLES, TRANSACTION_STATES
from ..services.approvals.tag_rules import MAX_TAGS, TAG_KEY_MAX_CHARS, TAG_VALUE_MAX_CHARS
from ..services.requests.transactions import CONTEXT_MAX_CHARS, MESSAGE_MAX_CHARS, TICKET_LIMITS

Status = Literal[TRANSACTION_STATES]
Role = Literal[ROLES]
Email = Annotated[str, StringConstraints(min_length=3, max_length=254)]
# A next_cursor from a list: opaque to the caller.
Cursor = Annotated[str, StringConstraints(pattern=r"^[0-9]{1,18}$")]
Limit = Annotated[int, Field(ge=1, le=100, description="At most this many, 1 to 100.")]


class Body(BaseModel):
    """A request body: unknown fields are refused, so a misspelt one is not silently ignored."""

    model_config = ConfigDict(extra="forbid")


class Query(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Ticket(Body):
    """The help desk's ticket a request is for, shown with it on its page and in the list."""

    system: Annotated[str, StringConstraints(max_length=TICKET_LIMITS["system"])] | None = \
        Field(None, examples=["jira"])
    id: Annotated[str, StringConstraints(max_length=TICKET_LIMITS["id"])] | None = \
        Field(None, examples=["HELP-1234"])
    url: Annotated[str, StringConstraints(max_length=TICKET_LIMITS["url"])] | None = \
        Field(None, examples=["https://example.atlassian.net/browse/HELP-1234"])


TagKey = Annotated[str, StringConstraints(min_length=1, max_length=TAG_KEY_MAX_CHARS)]
TagValue = Annotated[str, StringConstraints(min_length=1, max_length=TAG_VALUE_MAX_CHARS)]


class NewTransaction(Body):
    user: Email | Annotated[int, Field(ge=1)] | None = Field(
        None, description="The user who must prove who they are: their email, or their id. "
                          "Give either `user` or `tags`.")
    tags: Annotated[dict[TagKey, TagValue], Field(max_length=MAX_TAGS)] | None = Field(
        None, examples=[{"team": "finance"}],
        description="Instead of `user`: the routing rules (Settings → Routing) pick the user "
                    "by the first rule, in their order, whose tag is among these. 422 with the "
                    "reason when none matches.")
    message: Annotated[str, StringConstraints(min_length=1, max_length=MESSAGE_MAX_CHARS)] = \
        Field(description="Shown to the user: why you are asking.")
    context: Annotated[str, StringConstraints(max_length=CONTEXT_MAX_CHARS)] = ""
    ticket: Ticket | None = None
    group: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = Field(
        None, examples=["Security team"],
        description="Instead of `user`: the approval group (its name) whose members approve. "
                    "Each member gets their own link; verified once the group's threshold of "
                    "members verify, denied at the first deny.")
    payload: dict | list | None = Field(
        None, description="Any JSON (at most 8 KB) kept with the request and handed on in "
                          "the outgoing webhook's `data.payload` when it ends.")


class Person(BaseModel):
    id: int
    email: str
    name: str


class Delivery(BaseModel):
    channel: str
    state: Literal["queued", "sending", "sent", "failed", "cancelled"]
    attempts: int
    answer: str = Field(description="What the provider last answered, in words.")


class Incident(BaseModel):
    state: str = Field(description="triggered, acknowledged (by whom), resolved")
    number: int | None
    url: str | None


class Transaction(BaseModel):
    id: str
    status: Status
    code: str | None = Field(None, description="The call-binding code the agent reads aloud: "
                                               "only to the API key that sent the request.")
    message: str
    context: str
    user: Person
    requestor: Person
    created_at: datetime
    expires_at: datetime
    completed_at: datetime | None
    answered_how: Literal["passkey", "password"] | None = Field(
        description="How the user proved who they are, when verified.")
    channels: list[str]
    deliveries: list[Delivery]
    risks: list[str] = Field(description="What weakens the proof, in words.")
    pagerduty_incident: Incident | None
    ticket: Ticket | None
    group: "GroupProgress | None" = Field(
        None, description="For a request sent to an approval group: who was asked, each "
                          "member's answer, how many more approvals are needed.")
    payload: dict | list | None = None
    links: dict[str, str]


class MemberAnswer(BaseModel):
    member: Person
    answer: Literal["waiting", "verified", "denied", "not asked"]
    not_asked: str | None = Field(None, description="Why the member was not asked.")


class GroupProgress(BaseModel):
    name: str
    threshold: int
    approvals_needed: int
    members: list[MemberAnswer]


Transaction.model_rebuild()


class TransactionList(BaseModel):
    items: list[Transaction]
    next_cursor: str | None


class TransactionFilters(Query):
    status: Status | None = None
    user: Annotated[str, StringConstraints(max_length=254)] | None = Field(
        None, description="The user's email.")
    requestor: Annotated[str, StringConstraints(max_length=254)] | None = Field(
        None, description="The requestor's email (reviewers and admins).")
    ticket: Annotated[str, StringConstraints(max_length=TICKET_LIMITS["id"])] | None = Field(
        None, description="The ticket's id, exactly.")
    since: date | None = Field(None, description="The first UTC day sent.")
    until: date | None = Field(None, description="The last UTC day sent, included.")
    limit: Limit = 50
    cursor: Cursor | None = None


class Wait(Query):
    wait: Annotated[int, Field(ge=0, le=60)] = Field(
        0, description="Seconds to wait for the status to change from pending (at most 60): "
                       "the answer comes as soon as it does.")


class Event(BaseModel):
    id: int
    kind: str
    at: datetime
    actor: str | None
    text: str
    data: dict


class EventList(BaseModel):
    items: list[Event]
    next_cursor: str | None


class Page(Query):
    limit: Limit = 50
    cursor: Cursor | None = None


class User(BaseModel):
    id: int
    email: str
    name: str
    role: Role
    active: bool
    passkeys: int
    reachable_through: list[str]
    created_at: datetime
    last_sign_in_at: datetime | None


class UserList(BaseModel):
    items: list[User]
    next_cursor: str | None


class Invitation(Body):
    email: Email
    name: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    role: Role = "member"
    send_email: bool = Field(False, description="Email the link rather than return it.")


class UserChange(Body):
    role: Role | None = None
    active: bool | None = None


class LinkSent(Body):
    send_email: bool = Field(False, description="Email the link rather than return it.")


class Link(BaseModel):
    user: User
    kind: Literal["invitation", "passkey"]
    url: str | None = Field(description="The link, this once; null when it was emailed.")
    emailed: bool
    email_error: str | None = Field(
        None, description="Why the email was not sent, when it was asked for: the link is "
                          "returned instead.")
    expires_in_seconds: int

