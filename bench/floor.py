"""The floor of a fan-out: one gevent loop writing one pre-encoded frame to N sockets.

Nothing the dashboard does per event is here (no database, no broker, no per-watcher queue, no
WSGI layers), only what no server can avoid: a write of the frame's bytes to each watcher's
socket. bench/fanout.py measures it with the same watchers' client and the same clock as the
dashboard, so the table shows how far the dashboard is above it.

It speaks just enough HTTP/1.1 for bench/sse_client.py:

- ``GET /stream``: the headers of an event stream, chunked as gunicorn sends one, then the
  connection stays open (a greenlet per watcher waits for it to close, as a server's would);
- ``POST /send``: encodes the next event's frame (``--frame-bytes`` long, ``id: <n>`` first)
  once, writes it to every open stream from this one loop, then answers ``{"id": n,
  "watchers": n, "seconds": s}``;
- ``GET /healthz``: 200.

Run by bench/fanout.py: ``python -m bench.floor --port P --frame-bytes B``.
"""
from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402

from gevent.server import StreamServer  # noqa: E402

STREAM_HEAD = (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n"
               b"Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n")


def chunk(data):
    """One HTTP/1.1 chunk, as gunicorn writes each piece of a streamed body."""
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def frame(event_id, size):
    """An SSE frame of ``size`` bytes (at least its id and an empty JSON object) for the id."""
    start = f'id: {event_id}\ndata: {{"id":{event_id},"kind":"floor","pad":"'
    end = '"}\n\n'
    return (start + "x" * max(0, size - len(start) - len(end)) + end).encode()


def answer(body, status="200 OK", content_type="application/json"):
    return (f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body


class Floor:
    def __init__(self, frame_bytes):
        self.frame_bytes = frame_bytes
        self.watchers = {}  # socket -> None, in the order they connected
        self.last_id = 0

    def handle(self, sock, address):
        head = b""
        while b"\r\n\r\n" not in head:
            data = sock.recv(4096)
            if not data:
                return
            head += data
        method, path = head.split(b" ", 2)[:2]
        if method == b"GET" and path.startswith(b"/stream"):
            self.watch(sock)
        elif method == b"POST" and path == b"/send":
            sock.sendall(answer(json.dumps(self.send()).encode()))
        elif method == b"GET" and path == b"/healthz":
            sock.sendall(answer(b'{"status":"ok"}'))
        else:
            sock.sendall(answer(b"not here\n", "404 Not Found", "text/plain"))

    def watch(self, sock):
        sock.sendall(STREAM_HEAD + chunk(b"retry: 2000\n: stream open\n\n"))
        self.watchers[sock] = None
        try:
            while sock.recv(4096):
                pass
        except OSError:
            pass
        finally:
            self.watchers.pop(sock, None)

    def send(self):
        self.last_id += 1
        data = chunk(frame(self.last_id, self.frame_bytes))
        started = time.monotonic()
        for sock in list(self.watchers):
            try:
                sock.sendall(data)
            except OSError:
                self.watchers.pop(sock, None)
        return {"id": self.last_id, "watchers": len(self.watchers),
                "seconds": round(time.monotonic() - started, 6)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--frame-bytes", type=int, required=True,
                        help="the dashboard's frame size (an SSE frame of a transaction event)")
    args = parser.parse_args(argv)
    floor = Floor(args.frame_bytes)
    StreamServer((args.host, args.port), floor.handle, backlog=4096).serve_forever()


if __name__ == "__main__":
    main()
