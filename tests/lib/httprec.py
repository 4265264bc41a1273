#!/usr/bin/env python3
"""httprec.py - a local HTTP listener for tests that records every request.

Each request is appended to --out as one JSON object per line:
  {"method": ..., "path": ..., "headers": {name: value, ...}, "body": text}
(headers keep their case as sent; a repeated header is joined with ", ").
The line is written and flushed before the reply is sent.

Options: --port P (0 = pick one), --port-file F (the chosen port is written
there once listening, and printed on stdout), --out FILE, --status CODE
(reply status, default 200), --status-file F (read before each reply: a
status code, or "hang"; missing or empty: --status; the status sent is
recorded as "status"), --hang (read the request, record it, then never
answer: for timeout tests), --pid-file F.

It listens on 127.0.0.1 only and never makes a connection itself.
Python 3 standard library only.
"""
import argparse
import http.server
import json
import os
import socketserver
import sys
import threading


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--out", required=True)
    ap.add_argument("--status", type=int, default=200)
    ap.add_argument("--status-file")
    ap.add_argument("--hang", action="store_true")
    ap.add_argument("--pid-file")
    args = ap.parse_args()

    lock = threading.Lock()
    out = open(args.out, "a", encoding="utf-8")

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def handle_any(self):
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n) if n > 0 else b""
            headers = {}
            for k, v in self.headers.items():
                headers[k] = headers[k] + ", " + v if k in headers else v
            status, hang = args.status, args.hang
            if args.status_file:
                try:
                    with open(args.status_file) as f:
                        v = f.read().strip()
                except OSError:
                    v = ""
                if v == "hang":
                    hang = True
                elif v:
                    status = int(v)
            rec = {"method": self.command, "path": self.path,
                   "headers": headers,
                   "body": body.decode("utf-8", "replace")}
            if args.status_file:
                rec["status"] = "hang" if hang else status
            with lock:
                out.write(json.dumps(rec) + "\n")
                out.flush()
            if hang:
                threading.Event().wait()  # never answer
            reply = json.dumps({"status": status}).encode() + b"\n"
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(reply)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = handle_any

        def log_message(self, fmt, *a):  # keep test output quiet
            pass

    class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
        daemon_threads = True
        allow_reuse_address = True

    srv = Server(("127.0.0.1", args.port), Handler)
    port = srv.server_address[1]
    if args.pid_file:
        with open(args.pid_file, "w") as f:
            f.write("%d\n" % os.getpid())
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % port)
        os.rename(tmp, args.port_file)  # appears whole, once listening
    print(port, flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
