"""gunicorn for production (`make serve`): gevent workers, so each open live stream costs a
greenlet rather than a thread. Settings read SENDAUTH_* variables like the app does."""
import multiprocessing
import os

bind = os.environ.get("SENDAUTH_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("SENDAUTH_WORKERS", multiprocessing.cpu_count()))
worker_class = "gevent"
# Open connections per worker; each watcher of a live page holds one.
worker_connections = int(os.environ.get("SENDAUTH_WORKER_CONNECTIONS", "10000"))
# With gevent this is the worker's heartbeat deadline, not a limit on request time.
timeout = 30
# Streams are cut at shutdown after this; browsers reconnect to another worker and resume.
graceful_timeout = 10
keepalive = 5
# wsgi.py reads this and patches with gevent before anything else is imported.
raw_env = ["SENDAUTH_GEVENT=1"]
forwarded_allow_ips = os.environ.get("SENDAUTH_FORWARDED_ALLOW_IPS", "127.0.0.1")
accesslog = os.environ.get("SENDAUTH_ACCESS_LOG", "-")
# Answer tokens in request lines are masked by the app's log filter (sendauth_dashboard.security).
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms'
# gunicorn's control socket lives in the home folder and is shared by every instance; unused here.
control_socket_disable = True


def post_worker_init(worker):
    """What exists once the app is loaded lives as long as the worker: keep it out of the
    garbage collector's full collections (gc.freeze), which otherwise walk it all (~260,000
    objects, 130-230 ms in bench/fanout.py's profile) and stall every open stream meanwhile."""
    import gc

    gc.collect()
    gc.freeze()
