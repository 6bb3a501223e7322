"""The data model, by what it holds: people (accounts, passkeys, enrolment links, sessions),
requests (transactions, their deliveries, the event log, PagerDuty's incidents), settings
rows and outgoing webhooks. Every name is here, so ``from ..models import X`` works wherever
X lives, and importing this package defines every table (what Alembic's autogenerate
compares)."""
from .api import API_SCOPES, ApiKey, IdempotentRequest
from .approvals import (
    APPROVAL_DECISIONS,
    GROUP_NAME_MAX_CHARS,
    Approval,
    ApprovalGroup,
    ApprovalGroupMember,
)
from .columns import EventId, UTCDateTime, in_list, utcnow
from .insights import TALLY_SUBJECTS, UNTIMED, InsightOffset, InsightTally
from .people import (
    CHALLENGE_PURPOSES,
    ENROLMENT_KINDS,
    ROLE_LABELS,
    ROLES,
    EnrolmentLink,
    Passkey,
    PasskeyChallenge,
    SignIn,
    SignOnIdentity,
    User,
    role_rank,
)
from .provisioning import DEACTIVATED_BY, ScimGroup, ScimGroupMember, ScimPerson, ScimToken
from .requests import (
    DELIVERY_ACTIONS,
    DELIVERY_CHANNELS,
    DELIVERY_STATES,
    FINAL_TRANSACTION_STATES,
    INCIDENT_STATES,
    POSTGRESQL_ONLY_INDEXES,
    TRANSACTION_STATES,
    Delivery,
    Event,
    PagerDutyIncident,
    RoutingRule,
    Transaction,
    WebhookReceipt,
    in_schema_of,
    new_public_id,
)
from .settings import (
    SEVERITIES,
    TLS_MODES,
    EmailSettings,
    IntegrationSettings,
    IntegrationStatus,
    MessageTemplates,
    OrganisationSettings,
    PagerDutySettings,
    SignInSettings,
    SlackSettings,
    SmsSettings,
)
from .webhooks import (
    WEBHOOK_EVENT_TYPES,
    WEBHOOK_MESSAGE_STATES,
    WebhookAttempt,
    WebhookEndpoint,
    WebhookMessage,
)

__all__ = [
    "APPROVAL_DECISIONS", "GROUP_NAME_MAX_CHARS", "Approval", "ApprovalGroup",
    "ApprovalGroupMember",
    "API_SCOPES", "ApiKey", "IdempotentRequest",
    "CHALLENGE_PURPOSES", "DELIVERY_ACTIONS", "DELIVERY_CHANNELS", "DELIVERY_STATES",
    "ENROLMENT_KINDS", "FINAL_TRANSACTION_STATES", "INCIDENT_STATES", "InsightOffset",
    "InsightTally", "TALLY_SUBJECTS", "UNTIMED", "POSTGRESQL_ONLY_INDEXES",
    "ROLES", "ROLE_LABELS", "SEVERITIES", "TLS_MODES", "TRANSACTION_STATES",
    "Delivery", "EmailSettings", "EnrolmentLink", "Event", "EventId", "IntegrationSettings",
    "IntegrationStatus", "MessageTemplates", "OrganisationSettings", "PagerDutyIncident",
    "PagerDutySettings", "Passkey", "PasskeyChallenge", "RoutingRule", "SignIn",
    "SlackSettings", "SmsSettings", "Transaction",
    "SignInSettings", "SignOnIdentity",
    "UTCDateTime", "User", "WebhookReceipt", "in_list", "in_schema_of", "new_public_id",
    "role_rank", "utcnow",
    "WEBHOOK_EVENT_TYPES", "WEBHOOK_MESSAGE_STATES", "WebhookAttempt", "WebhookEndpoint",
    "WebhookMessage",
    "DEACTIVATED_BY", "ScimGroup", "ScimGroupMember", "ScimPerson", "ScimToken",
]
