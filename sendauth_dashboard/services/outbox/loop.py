"""A loop in a thread of its own that can be woken and stopped: the dispatcher's and the
webhook sender's shared lifecycle."""
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
