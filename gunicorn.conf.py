"""gunicorn for production (`make serve`): gevent workers, so each open live stream costs a
greenlet rather than a thread. Its settings come from the app's own configuration layers
(defaults, instance/config.py, SENDAUTH_* variables), as the app reads them."""
import importlib.util
import multiprocessing
from pathlib import Path


def _app_settings():
    """sendauth_dashboard/config.py's ``layered``, loaded from its file alone: importing the
    package would import Flask, SQLAlchemy and the rest into the master before it forks the
    gevent workers (dispatcher_process.py says why not)."""
    path = Path(__file__).resolve().parent / "sendauth_dashboard" / "config.py"
    spec = importlib.util.spec_from_file_location("_sendauth_config", path)
    config = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(config)
    return config.layered(config.instance_path())


settings = _app_settings()
bind = settings.get("BIND", "127.0.0.1:8000")
workers = int(settings.get("WORKERS") or multiprocessing.cpu_count())
worker_class = "gevent"
# Open connections per worker; each watcher of a live page holds one.
worker_connections = int(settings.get("WORKER_CONNECTIONS", 10000))
# With gevent this is the worker's heartbeat deadline, not a limit on request time.
timeout = 30
# Streams are cut at shutdown after this; browsers reconnect to another worker and resume.
graceful_timeout = 10
keepalive = 5
# wsgi.py reads this and patches with gevent before anything else is imported.
raw_env = ["SENDAUTH_GEVENT=1"]
# The delivery dispatcher. "process": the master runs one `flask --app wsgi worker` beside the
# web workers (dispatcher_process.py), so its database work never stalls their gevent loop; the
# default with REDIS_URL, through which sends wake it and its events reach the watchers.
# "thread", the default without Redis: each web worker runs one. "off": none here.
sendauth_dispatcher = settings["DISPATCHER"] or ("process" if settings["REDIS_URL"] else "thread")
if sendauth_dispatcher == "process":
    # Applied to the master's environment before when_ready, and so before workers are forked.
    raw_env.append("SENDAUTH_DISPATCHER=off")
forwarded_allow_ips = settings.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
accesslog = settings.get("ACCESS_LOG", "-")
# Answer tokens in request lines are masked by the app's log filter (sendauth_dashboard.security).
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms'
# gunicorn's control socket lives in the home folder and is shared by every instance; unused here.
control_socket_disable = True


def post_worker_init(worker):
    """Warm the worker before it takes traffic (sendauth_dashboard.warm: templates, database
    connections, Redis), so the first send after a restart answers like any other.

    Then what exists once the app is loaded and warm lives as long as the worker: keep it out
    of the garbage collector's full collections (gc.freeze), which otherwise walk it all
    (~260,000 objects, 130-230 ms in bench/fanout.py's profile) and stall every open stream
    meanwhile."""
    import gc
    import logging

    import gevent

    from sendauth_dashboard.warm import warm

    try:
        warm(worker.wsgi)
    except Exception:  # a database or Redis away now: the worker serves, cold, as before
        logging.getLogger("sendauth_dashboard.warm").exception("warming the worker failed")
    gc.collect()
    gc.freeze()
    gevent.spawn(_end_streams_when_stopping, worker)


def _end_streams_when_stopping(worker):
    """A worker told to stop (SIGTERM: a deploy, a restart, max_requests) waits up to
    graceful_timeout for its open requests, and a live stream never ends by itself: every stop
    took the whole 10 s and then the master killed the worker, streams and all. Ended at once
    instead, the browsers reconnect (to a worker still running, or to this one's successor)
    and resume from their Last-Event-ID, and the worker leaves as soon as its idle kept-alive
    connections close (keepalive, 5 s at most)."""
    import gevent

    from sendauth_dashboard.runtime import runtime

    while worker.alive:
        gevent.sleep(0.2)
    runtime(worker.wsgi).broker.close_all()


def when_ready(server):
    """Called once the master listens, before it forks the web workers."""
    if sendauth_dispatcher == "process":
        import dispatcher_process

        dispatcher_process.start(server, woken=bool(settings["REDIS_URL"]))


def on_exit(server):
    """Called once the web workers have stopped: the dispatcher sends what they queued last."""
    if sendauth_dispatcher == "process":
        import dispatcher_process

        dispatcher_process.stop(server)
