"""The outbox: deliveries queued with their transaction, the dispatcher that sends them, and
the send window that keeps each provider's rate limit."""
