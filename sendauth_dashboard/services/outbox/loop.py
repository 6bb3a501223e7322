"""A loop in a thread of its own that can be woken and stopped: the dispatcher's and the
webhook sender's shared lifecycle, and how one tells that another's process has ended."""
import os
import socket
import threading


class Loop:
    """``run()`` (a subclass's) in a daemon thread; ``wake()`` makes it look at once, ``stop()``
    ends it. Starting takes a lock of its own, never the one the loop's work uses: a SIGTERM
    handler that stops the loop while the main thread is starting it must not wait on a
    thread that waits on that lock."""

    thread_name = "sendauth-loop"

    def __init__(self):
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._starting = threading.Lock()
        self._thread = None

    def wake(self):
        self._wake.set()

    def start(self):
        """Run in a daemon thread of this process (the web process's default)."""
        with self._starting:
            if self._thread is None:
                self._thread = threading.Thread(target=self.run, name=self.thread_name,
                                                daemon=True)
                self._thread.start()

    def stop(self, timeout=None):
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def running(self):
        return self._thread is not None and self._thread.is_alive()

    def run(self):
        raise NotImplementedError


def owners_that_died(owners, host=None, alive=None):
    """Of ``owners`` (claims' owners, named "host:pid:…" as dispatchers and senders name
    themselves), those of this host whose process has ended: what they held can be taken back
    at once rather than after its lease."""
    host, alive = host or socket.gethostname(), alive or process_alive
    dead = set()
    for owner in owners:
        name, _, rest = owner.partition(":")
        pid = rest.split(":", 1)[0] if ":" in rest else ""
        if name == host and pid.isdigit() and not alive(int(pid)):
            dead.add(owner)
    return dead


def process_alive(pid):
    """Whether process ``pid`` still runs. A zombie has ended: a killed gunicorn worker whose
    master died with it is left to PID 1 to collect, which in a container may never happen
    (or only later), and signal 0 still reaches it."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            state = stat.read().rsplit(b")", 1)[1].split()[0]
    except FileNotFoundError:  # collected meanwhile, or no /proc (not Linux)
        return os.path.isdir("/proc/self")
    except (OSError, IndexError):
        return True
    return state not in (b"Z", b"X")
