"""Every kind of event, by name.

A kind is stored in the events table, shown in the audit log, sent to live pages (static/js
reads some) and read by tests: its string never changes; a new kind is a new name here. Each
kind's words (one line for the audit log and a transaction's timeline) are in the table
``services.live.words.WORDS``, whose words name channels and providers, which the floor
does not know.
"""

# A transaction's life: sent, then one final state (services.requests.transactions).
TRANSACTION_CREATED = "transaction.created"
TRANSACTION_VERIFIED = "transaction.verified"
TRANSACTION_DENIED = "transaction.denied"
TRANSACTION_CANCELLED = "transaction.cancelled"
TRANSACTION_EXPIRED = "transaction.expired"
# The kind that records a transaction's move to each final state.
TRANSACTION_BECAME = {"verified": TRANSACTION_VERIFIED, "denied": TRANSACTION_DENIED,
                      "cancelled": TRANSACTION_CANCELLED, "expired": TRANSACTION_EXPIRED}

# A request sent to an approval group: each member's answer (services.approvals.group_requests).
APPROVAL_VERIFIED = "approval.verified"
APPROVAL_DENIED = "approval.denied"
APPROVAL_BECAME = {"verified": APPROVAL_VERIFIED, "denied": APPROVAL_DENIED}

# Answering: a proof that did not hold, the passkey that did.
VERIFICATION_REFUSED = "verification.refused"
PASSKEY_USED = "passkey.used"
# No longer recorded (codes were picked from a few before they were typed); old rows keep it.
BINDING_WRONG_PICK = "binding.wrong_pick"

# The outbox: each channel's notification (or resolve) of a transaction (services.outbox).
DELIVERY_SENT = "delivery.sent"
DELIVERY_RETRYING = "delivery.retrying"
DELIVERY_FAILED = "delivery.failed"
DELIVERY_CANCELLED = "delivery.cancelled"
# The kind that records each outcome of an attempt.
DELIVERY_OUTCOME = {"sent": DELIVERY_SENT, "retrying": DELIVERY_RETRYING,
                    "failed": DELIVERY_FAILED, "cancelled": DELIVERY_CANCELLED}

# PagerDuty's incident for a transaction, as its webhooks tell it, and our resolve.
PAGERDUTY_TRIGGERED = "pagerduty.triggered"
PAGERDUTY_ACKNOWLEDGED = "pagerduty.acknowledged"
PAGERDUTY_UNACKNOWLEDGED = "pagerduty.unacknowledged"
PAGERDUTY_REASSIGNED = "pagerduty.reassigned"
PAGERDUTY_ESCALATED = "pagerduty.escalated"
PAGERDUTY_RESOLVED = "pagerduty.resolved"
PAGERDUTY_REOPENED = "pagerduty.reopened"
PAGERDUTY_ANNOTATED = "pagerduty.annotated"
PAGERDUTY_RESOLVE_REQUESTED = "pagerduty.resolve_requested"
# The kind that records each of PagerDuty's incident webhooks (its event_type).
PAGERDUTY_WEBHOOK = {
    "incident.triggered": PAGERDUTY_TRIGGERED,
    "incident.acknowledged": PAGERDUTY_ACKNOWLEDGED,
    "incident.unacknowledged": PAGERDUTY_UNACKNOWLEDGED,
    "incident.reassigned": PAGERDUTY_REASSIGNED,
    "incident.escalated": PAGERDUTY_ESCALATED,
    "incident.resolved": PAGERDUTY_RESOLVED,
    "incident.reopened": PAGERDUTY_REOPENED,
    "incident.annotated": PAGERDUTY_ANNOTATED,
}

# Accounts (the audit log).
USER_CREATED = "user.created"
USER_ROLE_CHANGED = "user.role_changed"
USER_DEACTIVATED = "user.deactivated"
USER_REACTIVATED = "user.reactivated"
USER_PASSWORD_CHANGED = "user.password_changed"
USER_PASSWORD_SET = "user.password_set"
USER_ENROLMENT_LINK_ISSUED = "user.enrolment_link_issued"
USER_ENROLLED = "user.enrolled"
USER_SIGNED_IN = "user.signed_in"
# A first sign-in through the identity provider linked its account to one here (or made it).
USER_SIGN_ON_LINKED = "user.sign_on_linked"
PASSKEY_REGISTERED = "passkey.registered"
PASSKEY_REMOVED = "passkey.removed"
PROFILE_MESSAGING_CHANGED = "profile.messaging_changed"
PROFILE_CHANGE_ANNOUNCED = "profile.change_announced"
# API keys (services.people.api_keys): made and revoked, each announced to the key's owner.
API_KEY_CREATED = "api_key.created"
API_KEY_REVOKED = "api_key.revoked"

# Outgoing webhooks (services.webhooks): endpoints set up by admins, or turned off by the sender.
WEBHOOK_ENDPOINT_CREATED = "webhook.endpoint_created"
WEBHOOK_ENDPOINT_CHANGED = "webhook.endpoint_changed"
WEBHOOK_SECRET_ROTATED = "webhook.secret_rotated"
WEBHOOK_ENDPOINT_DELETED = "webhook.endpoint_deleted"
WEBHOOK_ENDPOINT_DISABLED = "webhook.endpoint_disabled"

# Settings (the audit log): the organisation's rules, and each channel's settings and tests.
SETTINGS_ORGANISATION_CHANGED = "settings.organisation_changed"
# The organisation's own messages (services.messages.wording).
SETTINGS_MESSAGES_CHANGED = "settings.messages_changed"
# Routing rules from a request's tags to a person (services.approvals.tag_rules).
SETTINGS_ROUTING_CHANGED = "settings.routing_changed"
# Approval groups (services.approvals.groups): made, changed, deleted.
APPROVAL_GROUP_CREATED = "approval_group.created"
APPROVAL_GROUP_CHANGED = "approval_group.changed"
APPROVAL_GROUP_DELETED = "approval_group.deleted"

# SCIM provisioning (services.provisioning): the identity provider's token, and the role a
# group gives its members.
SCIM_TOKEN_ISSUED = "scim.token_issued"
SCIM_TOKEN_REVOKED = "scim.token_revoked"
SCIM_GROUP_ROLE_CHANGED = "scim.group_role_changed"
# Single sign-on (services.sign_on): the provider, roles, "require single sign-on".
SETTINGS_SIGN_IN_CHANGED = "settings.sign_in_changed"


def settings_changed(channel):
    """``settings.pagerduty_changed``: an admin saved the channel's settings."""
    return f"settings.{channel}_changed"


def settings_tested(channel):
    """``settings.pagerduty_tested``: an admin sent a test through the channel."""
    return f"settings.{channel}_tested"


def settings_test_resolved(channel):
    """``settings.pagerduty_test_resolved``: an admin resolved their test incident."""
    return f"settings.{channel}_test_resolved"


def of_channel(channel):
    """Every kind about one channel's settings."""
    return (settings_changed(channel), settings_tested(channel), settings_test_resolved(channel))
