"""A loopback TCP proxy between the app's processes and a server (PostgreSQL, Redis) that a test
can cut, pause and restore, so a fault test never touches the real server, which other tests
(and other people's test runs) share.

- ``cut()``: every connection is closed and new ones are refused (the listening socket is
  closed), as when the server crashed.
- ``pause()``: connections stay open and new ones are taken, but no byte moves either way, as
  when the server hangs (stopped, swapping, a network partition).
- ``restore()``: traffic flows again: held bytes are passed on (a hung server that recovers
  reads what was sent to it meanwhile), and after a cut the same port listens again.

One thread runs every connection with ``selectors``; each control call is carried out by that
thread and has taken effect when it returns. ``close()`` ends it all.
"""
import errno
import selectors
import socket
import threading
from collections import deque

CHUNK = 65536
# Bytes a side may have waiting for its peer before the proxy stops reading from it.
BACKLOG_BYTES = 1 << 20


class _Connection:
    """A client's socket and the proxy's socket to the server, with what each has waiting."""

    def __init__(self, client, server):
        self.sockets = (client, server)
        self.waiting = {client: bytearray(), server: bytearray()}  # to be written to the key
        self.ended = {client: False, server: False}  # the key sent EOF
        self.closed = False

    def peer(self, sock):
        return self.sockets[1] if sock is self.sockets[0] else self.sockets[0]


class TcpProxy:
    """Listens on 127.0.0.1 (``port``, ``address``) and forwards to ``upstream`` (host, port)."""

    def __init__(self, upstream, name="proxy"):
        self.upstream = upstream
        self.name = name
        self.state = "open"  # "open", "paused" or "cut"
        self.connections_made = 0
        self._selector = selectors.DefaultSelector()
        self._connections = set()
        self._orders = deque()
        self._wake_read, self._wake_write = socket.socketpair()
        self._wake_read.setblocking(False)
        self._selector.register(self._wake_read, selectors.EVENT_READ, "wake")
        self._listener = None
        self.port = self._listen(0)
        self._running = True
        self._thread = threading.Thread(target=self._run, name=f"{name} proxy", daemon=True)
        self._thread.start()

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    # -- control (from any thread) --------------------------------------------------------
    def cut(self):
        """Close every connection; refuse new ones until ``restore()``."""
        self._order(self._cut)

    def pause(self):
        """Hold every byte, both ways, on every connection (new ones too) until ``restore()``."""
        self._order(self._pause)

    def restore(self):
        self._order(self._restore)

    @property
    def open_connections(self):
        return self._order(lambda: len(self._connections))

    def close(self):
        if self._running:
            self._order(self._stop)
            self._thread.join(10)
        self._wake_read.close()
        self._wake_write.close()
        self._selector.close()

    def _order(self, action):
        """Run ``action`` on the proxy's thread; its result once it has run."""
        done, result = threading.Event(), []
        self._orders.append(lambda: (result.append(action()), done.set()))
        self._wake_write.send(b"x")
        if not done.wait(10):
            raise RuntimeError(f"{self.name} proxy: its thread did not answer")
        return result[0]

    # -- on the proxy's thread ------------------------------------------------------------
    def _listen(self, port):
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen(128)
        listener.setblocking(False)
        self._listener = listener
        self._selector.register(listener, selectors.EVENT_READ, "listen")
        return listener.getsockname()[1]

    def _cut(self):
        self.state = "cut"
        if self._listener is not None:
            self._selector.unregister(self._listener)
            self._listener.close()
            self._listener = None
        for connection in list(self._connections):
            self._close(connection)

    def _pause(self):
        self.state = "paused"
        for connection in self._connections:
            self._watch(connection)

    def _restore(self):
        if self._listener is None:
            self._listen(self.port)
        self.state = "open"
        for connection in list(self._connections):
            self._watch(connection)

    def _stop(self):
        self._cut()
        self._running = False

    def _run(self):
        while self._running:
            for key, mask in self._selector.select(timeout=1.0):
                if key.data == "wake":
                    self._obey()
                elif key.data == "listen":
                    if self._listener is not None:  # not closed by an order just obeyed
                        self._accept()
                elif not key.data.closed and self.state == "open":
                    self._pump(key.data, key.fileobj, mask)

    def _obey(self):
        try:
            self._wake_read.recv(4096)
        except BlockingIOError:
            pass
        while self._orders:
            self._orders.popleft()()

    def _accept(self):
        try:
            client, _ = self._listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        try:
            server = socket.create_connection(self.upstream, timeout=5)
        except OSError:
            client.close()  # the real server is away: so is the proxy, for this client
            return
        for sock in (client, server):
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        connection = _Connection(client, server)
        self._connections.add(connection)
        self.connections_made += 1
        self._watch(connection)

    def _watch(self, connection):
        """Register each socket for what it can do now: nothing at all while paused."""
        for sock in connection.sockets:
            events = 0
            if self.state == "open":
                peer = connection.peer(sock)
                if not connection.ended[sock] and len(connection.waiting[peer]) < BACKLOG_BYTES:
                    events |= selectors.EVENT_READ
                if connection.waiting[sock]:
                    events |= selectors.EVENT_WRITE
            registered = sock in self._selector.get_map()
            if events and registered:
                self._selector.modify(sock, events, connection)
            elif events:
                self._selector.register(sock, events, connection)
            elif registered:
                self._selector.unregister(sock)

    def _pump(self, connection, sock, mask):
        peer = connection.peer(sock)
        try:
            if mask & selectors.EVENT_READ:
                data = sock.recv(CHUNK)
                if data:
                    connection.waiting[peer] += data
                else:
                    connection.ended[sock] = True
            if mask & selectors.EVENT_WRITE and connection.waiting[sock]:
                sent = sock.send(connection.waiting[sock])
                del connection.waiting[sock][:sent]
            # Pass on what was read at once, where the peer can take it.
            if connection.waiting[peer]:
                sent = peer.send(connection.waiting[peer])
                del connection.waiting[peer][:sent]
        except (BlockingIOError, InterruptedError):
            pass
        except OSError as exc:
            if exc.errno not in (errno.ECONNRESET, errno.EPIPE, errno.ENOTCONN):
                raise
            self._close(connection)
            return
        if any(connection.ended[s] and not connection.waiting[connection.peer(s)]
               for s in connection.sockets):
            self._close(connection)  # one side left and all it sent has been passed on
            return
        self._watch(connection)

    def _close(self, connection):
        connection.closed = True
        self._connections.discard(connection)
        for sock in connection.sockets:
            if sock in self._selector.get_map():
                self._selector.unregister(sock)
            sock.close()
