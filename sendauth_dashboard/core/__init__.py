"""The floor: what every layer may use and that uses nothing above it (models and the app's
plumbing only): the event log, after-commit work, secrets, single-row settings, tokens, ids
and text checks."""
