"""Workload 4 (server side): a threaded JSON HTTP server on loopback.

Owns: an http.server.ThreadingHTTPServer bound to 127.0.0.1 on a free port
that answers every GET with a JSON document of ``rows`` items (24 by
default; the httpserver200 case asks for 200) built per request through a
20-deep Python call stack (20 frames below the handler's do_GET).  It prints
``PORT <n>`` and its threads (benchlib.serving) on stdout once listening,
serves until SIGTERM/SIGINT, then exits cleanly (so a tracer wrapping the
process, e.g. memray, can finish its output).  The load generator (wrk) and
the timing live in the runner; this process only serves.  Never binds to
anything but loopback.

    python wl_server.py depth=20 [rows=24]
"""

import itertools
import json
import signal
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import benchlib

DEPTH = 20
ROWS = 24


def build_document(path, counter):
    items = []
    for k in range(ROWS):
        items.append({"id": counter * 100 + k, "name": f"item-{k}",
                      "price": round(0.5 + k * 1.25, 2),
                      "tags": [f"t{k % 5}", f"g{k % 3}"],
                      "stock": {"warehouse": k % 4, "count": (counter + k) % 17}})
    return {"path": path, "request": counter, "items": items,
            "summary": {"count": len(items),
                        "total": sum(i["price"] for i in items)}}


REQUESTS = itertools.count(1)  # next() is atomic under the GIL


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: without TCP_NODELAY, Nagle's
    # algorithm and the client's delayed ACK stall every response ~40 ms.
    disable_nagle_algorithm = True

    def do_GET(self):
        # The document is built DEPTH frames below do_GET (which itself sits
        # ~11 frames deep in the server thread).
        doc = benchlib.at_depth(benchlib.stack_depth() + DEPTH,
                                build_document, self.path, next(REQUESTS))
        body = json.dumps(doc).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):  # noqa: A002 - stdlib signature
        pass


def stop(signum, frame):
    raise KeyboardInterrupt


def main():
    global DEPTH, ROWS
    args = benchlib.parse_args(sys.argv[1:], depth=20, rows=24)
    DEPTH, ROWS = args["depth"], args["rows"]
    signal.signal(signal.SIGTERM, stop)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    benchlib.serving(server.server_address[1])
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    benchlib.emit(requests=next(REQUESTS) - 1)


if __name__ == "__main__":
    main()
