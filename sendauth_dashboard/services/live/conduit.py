"""A watcher's conduit: the socket of a stream waiting under gunicorn's gevent worker, which
the fan-out writes live frames to itself instead of waking the stream."""
import socket
import sys

from .wire import live_frames


class Conduit:
    """A watcher's socket, which the fan-out writes live frames to itself while the stream waits.

    Waking a stream's greenlet to format and write each event cost 45-65 us per watcher and
    event; one loop writing the same bytes to every socket costs about a fifth of that
    (bench/fanout.py). So while the stream waits with nothing queued it marks its conduit
    ``idle`` with the id it is at, and the fan-out (``take``) writes the next message in order
    straight to the socket, without blocking, and advances the id. Anything else (a gap, a user
    event that may change rights, a socket that takes only part of a frame) goes to the
    stream's queue as before, and the stream, awake, writes the rest of a partial frame first.

    Only under gunicorn's gevent worker (``conduit_for``): every greenlet of the process runs in
    one thread, so nothing writes to the socket between the stream's own writes (gunicorn's,
    when it yields) and the fan-out's (while it is idle). The frames are chunked as gunicorn
    chunks the rest of the response.
    """

    __slots__ = ("viewer", "idle", "last_id", "pending", "broken", "_sock", "_raw", "_chunked")

    def __init__(self, viewer, sock, raw, chunked):
        self.viewer = viewer
        self.idle = False
        self.last_id = 0
        self.pending = b""
        self.broken = False
        self._sock = sock  # gevent's socket: writes that wait cooperatively
        self._raw = raw  # the non-blocking socket under it: writes that never wait
        self._chunked = chunked

    def take(self, message, after=None):
        """Write ``message`` now if it is the stream's next; False: queue it for the stream.

        ``after``: the id fanned out before this one, every id between them known not to exist.
        """
        if not self.idle or not isinstance(message, dict):
            return False
        if str(message.get("kind", "")).startswith("user."):
            return False  # the stream checks the viewer's rights
        event_id = message["id"]
        if event_id <= self.last_id:
            return True  # sent already, or not theirs
        if event_id != self.last_id + 1 and after != self.last_id:
            return False  # the stream catches up from the table
        self.last_id = event_id
        if not self.viewer.may_see(message):
            return True
        data = live_frames.wire(message, self._chunked)
        try:
            sent = self._raw.send(data)
        except BlockingIOError:
            sent = 0
        except OSError:
            self.broken = True
            self.idle = False
            return False  # wakes the stream, which ends
        if sent < len(data):
            self.pending = data[sent:]
            self.idle = False
            return False  # wakes the stream, which writes the rest first
        return True

    def gone(self):
        """True once the browser has hung up (its end of the connection closed, read without
        waiting); the stream then ends at its next wake, its slot given back by the caller."""
        if not self.broken:
            try:
                self.broken = self._raw.recv(1, socket.MSG_PEEK) == b""
            except BlockingIOError:
                pass  # nothing to read: still there
            except OSError:
                self.broken = True
        if self.broken:
            self.idle = False  # the next event wakes the stream, which ends
        return self.broken

    def flush(self):
        """Write what the socket did not take (waiting for it, as any write of the stream's
        does); False when the socket is broken."""
        if self.pending and not self.broken:
            try:
                self._sock.sendall(self.pending)
            except OSError:
                self.broken = True
            self.pending = b""
        return not self.broken


def conduit_for(environ, viewer):
    """A Conduit for this request's stream under gunicorn's gevent worker speaking HTTP/1.1 to
    a plain socket; None elsewhere (Werkzeug's server, TLS, HTTP/1.0, the tests' client), where
    the stream writes every frame itself."""
    sock = environ.get("gunicorn.socket")
    if sock is None or environ.get("SERVER_PROTOCOL") != "HTTP/1.1" \
            or environ.get("REQUEST_METHOD") != "GET":
        return None
    gevent_socket = sys.modules.get("gevent.socket")
    if gevent_socket is None or type(sock) is not gevent_socket.socket:
        return None  # not gevent's plain socket (TLS wraps it in another class)
    raw = getattr(sock, "_sock", None)
    if raw is None:
        return None
    return Conduit(viewer, sock, raw, chunked=True)
