"""Workload (server side): a Flask JSON API on waitress, 8 threads, loopback.

Owns: a small Flask application whose one endpoint, ``GET /rows``, builds
``rows`` records (200 by default) per request -- the shape of a typical
list endpoint: ids, strings, a timestamp, a nested object and a list per
record -- and returns them with ``flask.jsonify``.  It is served by
waitress (a production threaded WSGI server, from PyPI) with ``threads``
worker threads on 127.0.0.1 and a free port.  Nothing here adds call
depth: the stack is whatever Flask, Werkzeug and waitress make it.

Protocol as wl_server.py: ``PORT <n>`` and ``THREADS ...`` on stdout once
listening (benchlib.serving), serve until SIGTERM/SIGINT, then one
BENCH_RESULT line (requests served, tracer state).  The load (wrk) and the
timing live in the runner.  Never binds to anything but loopback.

    python wl_flask.py [rows=200] [threads=8]
"""

import datetime
import itertools
import signal
import sys

import benchlib

REQUESTS = itertools.count(1)  # next() is atomic under the GIL
EPOCH = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
REGIONS = ("eu-west", "us-east", "ap-south", "sa-east")


def make_app(rows):
    from flask import Flask, jsonify, request

    app = Flask("wl_flask")

    def record(n, request_no):
        created = EPOCH + datetime.timedelta(minutes=7 * n + request_no % 60)
        return {
            "id": request_no * 1000 + n,
            "name": f"customer-{n:04d}",
            "email": f"customer{n}@example.test",
            "created": created.isoformat(),
            "active": n % 3 != 0,
            "balance": round(n * 3.17 - 250.0, 2),
            "region": REGIONS[n % len(REGIONS)],
            "address": {"street": f"{n} Main St", "zip": f"{10000 + n}"},
            "tags": [f"t{n % 7}", f"g{n % 5}"],
        }

    @app.get("/rows")
    def list_rows():
        request_no = next(REQUESTS)
        limit = min(int(request.args.get("limit", rows)), rows)
        items = [record(n, request_no) for n in range(limit)]
        return jsonify({"request": request_no, "count": len(items),
                        "rows": items})

    return app


def stop(signum, frame):
    raise KeyboardInterrupt


def main():
    args = benchlib.parse_args(sys.argv[1:], rows=200, threads=8)
    import logging

    import waitress

    # 16 connections on 8 threads queue by design; waitress would log a
    # "Task queue depth" warning to stderr for nearly every request.
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)

    app = make_app(args["rows"])
    signal.signal(signal.SIGTERM, stop)
    server = waitress.create_server(app, host="127.0.0.1", port=0,
                                    threads=args["threads"],
                                    connection_limit=1000)
    benchlib.serving(server.effective_port)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
    benchlib.emit(requests=next(REQUESTS) - 1, rows=args["rows"],
                  threads=args["threads"])


if __name__ == "__main__":
    main()
