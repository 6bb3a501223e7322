"""Live updates: the event log, the broker that carries committed events to every process,
and the server-sent event streams that watchers read."""
