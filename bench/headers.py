"""The response headers bench/instrumented.py adds, by name, for the benchmarks that read them:
importing bench.instrumented would create the whole app (wsgi.py) in the benchmark's process."""
# The CLOCK_MONOTONIC time right after the request's database transaction committed.
COMMITTED_AT = "X-Bench-Committed-At"
# The events the request wrote, "id:kind" comma-separated.
EVENTS = "X-Bench-Events"
