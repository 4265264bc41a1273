#!/usr/bin/env python3
"""policyd-client.py - a test client of postroom-policyd (not a test itself).

  policyd-client.py ADDR [--style readsocket|persistent|nohalfclose] < INPUT

ADDR is HOST:PORT or a unix socket path. INPUT is sent as is.
  readsocket   (default) send everything, half-close, read until EOF (Exim)
  persistent   send one request at a time (split at empty lines), read its
               reply before the next (Postfix), then report whether the
               server kept the connection open
  nohalfclose  send everything and read until the server closes
Prints the replies, with the volatile ts=/sig= of signed headers replaced,
and "<closed>" (the server closed) or "<open>" at the end."""
import re, socket, sys, time

def connect(addr):
    if "/" in addr:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(addr)
    else:
        host, port = addr.rsplit(":", 1)
        s = socket.create_connection((host, int(port)))
    s.settimeout(20)
    return s

def read_reply(s):
    data = b""
    while not data.endswith(b"\n\n"):
        chunk = s.recv(65536)
        if not chunk:
            return data, True
        data += chunk
    return data, False

def sanitize(text):
    text = re.sub(r"ts=\d+", "ts=<ts>", text)
    return re.sub(r"sig=[0-9a-f]{64}", "sig=<sig>", text)

def main():
    addr = sys.argv[1]
    style = sys.argv[3] if len(sys.argv) > 3 and sys.argv[2] == "--style" else "readsocket"
    data = sys.stdin.buffer.read()
    s = connect(addr)
    out = b""
    closed = False
    if style == "persistent":
        parts = [p + b"\n\n" for p in data.split(b"\n\n") if p.strip(b"\n")]
        for p in parts:
            s.sendall(p)
            reply, closed = read_reply(s)
            out += reply
            if closed:
                break
        if not closed:
            s.settimeout(0.3)
            try:
                closed = s.recv(1) == b""
            except socket.timeout:
                closed = False
    else:
        s.sendall(data)
        if style == "readsocket":
            s.shutdown(socket.SHUT_WR)
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                closed = True
                break
            out += chunk
    sys.stdout.write(sanitize(out.decode("utf-8", "replace")))
    sys.stdout.write("<closed>\n" if closed else "<open>\n")

main()
