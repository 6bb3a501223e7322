"""What is counted and shown about the whole organisation: insights, the audit log, health
("right now") and the organisation's settings."""
