"""The dashboard as real processes: gunicorn servers and `flask worker` dispatchers, for tests
of what only several processes can show."""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import requests

from sendauth_dashboard.runtime import runtime
from sendauth_dashboard.services.outbox.dispatcher import start_thread
from tests.support.helpers import wait_until

from .accounts import PASSWORD
from .sse import HttpStream

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
CSRF = re.compile(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"')
BINDING_CODE = re.compile(r"data-binding-code>(\d+)<")


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


SECRET_KEY = "shared secret key of the test servers"


def environment(tmp_path, **settings):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENDAUTH_")}
    env.update({
        "SENDAUTH_SECRET_KEY": SECRET_KEY,
        "SENDAUTH_INSTANCE_PATH": str(tmp_path / "instance"),
        "SENDAUTH_PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000",
        "SENDAUTH_SEND_LIMIT_PER_REQUESTOR": "[1000000, 1]",
        "SENDAUTH_SEND_LIMIT_PER_USER": "[1000000, 1]",
        "SENDAUTH_SEND_LIMIT_PER_REQUESTOR_AND_USER": "[1000000, 1]",
    })
    env.update({f"SENDAUTH_{k}": str(v) for k, v in settings.items()})
    return env


class Process:
    def __init__(self, args, env, log_path):
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.process = subprocess.Popen(args, cwd=ROOT, env=env, stdout=self._log,
                                        stderr=subprocess.STDOUT, start_new_session=True)

    def stop(self, sig=signal.SIGTERM, timeout=20):
        if self.process.poll() is None:
            os.killpg(self.process.pid, sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout)
        self._log.close()
        return self.process.returncode

    def log(self):
        return Path(self.log_path).read_text(errors="replace")


def flask(env, *args):
    return subprocess.run([BIN / "flask", "--app", "wsgi", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120, check=True)


def gunicorn(env, tmp_path, workers=1, name="gunicorn", app="wsgi:app"):
    port = free_port()
    env = dict(env, SENDAUTH_BIND=f"127.0.0.1:{port}", SENDAUTH_WORKERS=str(workers))
    server = Process([BIN / "gunicorn", "-c", "gunicorn.conf.py", app], env,
                     tmp_path / f"{name}.log")
    server.url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _healthy(server.url), timeout=30, message=f"{name} answering")
    except AssertionError:
        server.stop()  # nobody else holds it: left running, it served on after the test
        raise
    return server


def worker(env, tmp_path, name="worker", concurrency=4):
    return Process([BIN / "flask", "--app", "wsgi", "worker", "--concurrency", str(concurrency)],
                   env, tmp_path / f"{name}.log")


def _healthy(url):
    try:
        return requests.get(f"{url}/healthz", timeout=1).ok
    except requests.RequestException:
        return False


class Browser:
    """A person's session with a served dashboard, through real HTTP."""

    def __init__(self, url):
        self.url = url
        self.session = requests.Session()
        # A connection per request: gunicorn, told to stop, waits for an idle kept-alive
        # connection until its keepalive (5 s) runs out, and every test stops its server.
        self.session.headers["Connection"] = "close"

    def token(self, path):
        return CSRF.search(self.session.get(self.url + path, timeout=10).text).group(1)

    def login(self, email, password=PASSWORD):
        response = self.session.post(self.url + "/login", data={
            "email": email, "password": password, "csrf_token": self.token("/login"),
        }, timeout=10, allow_redirects=False)
        assert response.status_code == 302, response.text[:500]

    def post(self, path, data, token_path=None):
        form = {"csrf_token": self.token(token_path or path), **data}
        return self.session.post(self.url + path, data=form, timeout=10, allow_redirects=False)

    def verify(self, path, authenticator, code):
        """Answer ``path`` (an /authenticate/ link) with ``code`` and a passkey assertion, as
        the page's script does."""
        options = self.session.post(self.url + path + "/passkey-options", timeout=10,
                                    headers={"X-CSRFToken": self.token(path)})
        assert options.status_code == 200, options.text[:500]
        return self.post(path, {"decision": "verify", "code": code,
                                "credential": json.dumps(authenticator.get(options.json()))})

    def binding_code(self, public_id):
        """The code the requestor's page for the transaction shows."""
        page = self.session.get(f"{self.url}/transactions/{public_id}", timeout=10).text
        return BINDING_CODE.search(page).group(1)

    def watch(self):
        return HttpStream(self.session, f"{self.url}/transactions/stream")


class LiveServer:
    """The app served over real HTTP by Werkzeug's threaded server, as `make run` does.

    ``host_name`` is the name in its address (and BASE_URL): WebAuthn takes ``localhost`` as
    a relying party id, never an IP address."""

    def __init__(self, app, host_name="127.0.0.1"):
        from werkzeug.serving import make_server

        self.app = app
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://{host_name}:{self.server.server_port}"
        app.config["BASE_URL"] = self.url
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()
        start_thread(app)  # with DISPATCHER "thread", as a serving process starts it (serve)

    def stop(self):
        runtime(self.app).broker.close_all()
        self.server.shutdown()
        self.server.server_close()
        dispatcher = runtime(self.app).dispatcher
        if dispatcher is not None:
            dispatcher.stop(timeout=10)
