"""The delivery dispatcher as a process of its own beside gunicorn's web workers
(``SENDAUTH_DISPATCHER=process``; gunicorn.conf.py starts and stops it).

Why: as a thread of a gevent worker, the dispatcher runs its ~35 SQL statements per send on the
worker's one loop, and SQLite's calls block that loop, so live fan-outs to thousands of watchers
waited behind it (issue 18). As ``flask --app wsgi worker``, its database work runs beside them.

gunicorn's master imports this module, so it imports nothing but the standard library: the web
workers are forked from the master, and wsgi.py patches with gevent in each of them before
Flask, SQLAlchemy, requests or ssl are imported. Importing ``sendauth_dashboard`` here would
import all of those into the master first, which is why this module is not in the package.
"""
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time

COMMAND = [sys.executable, "-m", "flask", "--app", "wsgi", "worker"]
# Waits before starting it again: doubling while it keeps dying within STEADY_SECONDS of its
# start (a database that is down, a broken setting), back to the first once it ran that long.
FIRST_RESTART_DELAY = 1.0
LONGEST_RESTART_DELAY = 60.0
STEADY_SECONDS = 60.0

PR_SET_PDEATHSIG = 1  # linux/prctl.h
_prctl = ctypes.CDLL(None).prctl if sys.platform == "linux" else None

_running = None

# gunicorn's master forks web workers from its main thread while this module's thread starts
# the dispatcher. A worker forked while Popen starts it would inherit Popen's error pipe (the
# child reports a failed exec on it), and Popen would wait for that worker to end: so forks wait
# for a start under way. Reentrant: Popen with a preexec_fn runs these fork hooks itself.
_starting = threading.RLock()
os.register_at_fork(before=_starting.acquire, after_in_parent=_starting.release,
                    after_in_child=_starting.release)


def start(arbiter, woken):
    """Start the dispatcher process, and keep it running until ``stop``. ``woken``: whether
    sends can wake it (the app's REDIS_URL is set)."""
    global _running
    if not woken:
        arbiter.log.warning("SENDAUTH_DISPATCHER=process without REDIS_URL: no send "
                            "wakes the dispatcher process (it looks every "
                            "SENDAUTH_DISPATCHER_IDLE_SECONDS), and live pages get its events late")
    _running = DispatcherProcess(arbiter.log, arbiter.cfg.graceful_timeout)
    _running.start()


def stop(arbiter):
    if _running is not None:
        _running.stop()


class DispatcherProcess:
    """One ``flask --app wsgi worker`` child, started by a thread of gunicorn's master and
    started again whenever it ends, until ``stop``.

    It gets the master's environment and working directory, without SENDAUTH_GEVENT (it is not
    a gevent worker), and a session of its own: a signal to gunicorn's process group (Ctrl-C in
    a terminal) reaches the master, which stops it once the web workers have stopped, so it
    sends what they queued last. The kernel sends it SIGTERM when the thread that started it
    ends (Linux's PR_SET_PDEATHSIG), and that thread lives as long as the master, so a master
    killed without running its exit hooks (SIGKILL, a crash) takes it along.
    """

    def __init__(self, log, graceful_timeout):
        self.log = log
        self.graceful_timeout = graceful_timeout
        self.process = None
        # Held while a child is started, so none is started once ``stop`` has begun.
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._supervise, name="sendauth-dispatcher",
                                        daemon=True)

    def start(self):
        self._thread.start()

    def stop(self):
        """SIGTERM, so it finishes the sends under way; SIGKILL after the graceful timeout."""
        with self._lock:
            self._stopping.set()
            process = self.process
        if process is not None:
            process.send_signal(signal.SIGTERM)  # not if it has ended already
        self._thread.join(self.graceful_timeout)
        if self._thread.is_alive() and process is not None:
            self.log.warning("Dispatcher process (pid:%s) still running after %s s; killing it",
                             process.pid, self.graceful_timeout)
            process.send_signal(signal.SIGKILL)
            self._thread.join()

    def _supervise(self):
        delay = None
        while True:
            with self._lock:
                if self._stopping.is_set():
                    return
                started = time.monotonic()
                self.process = process = self._spawn()
            code = _wait(process) if process else None
            ending = f"(pid:{process.pid}) {_described(code)}" if process else "did not start"
            if self._stopping.is_set():
                self.log.info("Dispatcher process %s", ending)
                return
            steady = time.monotonic() - started >= STEADY_SECONDS
            delay = (FIRST_RESTART_DELAY if steady or delay is None
                     else min(delay * 2, LONGEST_RESTART_DELAY))
            # 0: it was asked to stop (SIGTERM, SIGINT), by a person or by a service manager
            # stopping gunicorn too (whose exit hook then stops the next one).
            log = self.log.info if code == 0 else self.log.error
            log("Dispatcher process %s; starting it again in %g s", ending, delay)
            self._stopping.wait(delay)

    def _spawn(self):
        env = {k: v for k, v in os.environ.items() if k != "SENDAUTH_GEVENT"}
        master = os.getpid()
        try:
            with _starting:
                process = subprocess.Popen(COMMAND, env=env, start_new_session=True,
                                           preexec_fn=lambda: _end_with(master))
        except OSError as exc:
            self.log.error("Dispatcher process could not start: %s", exc)
            return None
        self.log.info("Dispatcher process started (pid:%s)", process.pid)
        return process


def _end_with(master):
    """In the child, before it runs the command: SIGTERM when the master's thread ends; and
    end now if the master has already gone (then the child's parent is another process)."""
    if _prctl is not None:
        _prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != master:
        os._exit(1)


def _wait(process):
    """Its return code once it has ended (negative: the signal that ended it), or None if the
    master took it first.

    gunicorn's master collects every child that ends (``os.waitpid(-1)`` in
    ``Arbiter.reap_workers``), and the exit status goes to whoever collects it: ``waitid`` with
    WNOWAIT reads it and leaves the child to be collected by whichever comes first
    (``Popen.poll`` takes ECHILD as "already collected").
    """
    if not hasattr(os, "waitid"):  # not on macOS before Python 3.13
        return process.wait()
    try:
        info = os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOWAIT)
    except ChildProcessError:
        info = None
    process.poll()
    if info is None:
        return None
    return info.si_status if info.si_code == os.CLD_EXITED else -info.si_status


def _described(code):
    if code is None:
        return "ended"
    if code < 0:
        return f"was killed by {signal.Signals(-code).name}"
    return f"exited with code {code}"
