#!/usr/bin/env python3
"""lmtpd-client.py - a scriptable LMTP client for tests/integration/lmtpd-*.sh.

usage: lmtpd-client.py ADDRESS [SCRIPT]
  ADDRESS  /path/to/unix.socket or HOST:PORT
  SCRIPT   file of steps (default: stdin holds raw bytes to send at once,
           then every reply is printed until the server closes)
Steps, one per line:
  S text      send text + CRLF
  F path      send the file's bytes as they are
  R           read one (multi-line) reply and print it
  Z seconds   sleep
  X command   run a shell command
  W path      wait (up to 60 s) until the file path exists
  C           close now (without reading)
After the last step the client reads and prints replies until the server
closes the connection (or 10 s pass). Reply lines are printed as they are,
one per line, without CR.
"""
import os
import socket
import subprocess
import sys
import threading
import time


def connect(addr):
    if addr.startswith("/"):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(addr)
    else:
        host, port = addr.rsplit(":", 1)
        s = socket.create_connection((host, int(port)))
    s.settimeout(float(os.environ.get("LMTP_TIMEOUT", "10")))
    return s


class Reader:
    def __init__(self, s):
        self.s = s
        self.buf = b""

    def line(self):
        while b"\n" not in self.buf:
            try:
                d = self.s.recv(65536)
            except (socket.timeout, ConnectionResetError):
                d = b""
            if not d:
                return None
            self.buf += d
        line, self.buf = self.buf.split(b"\n", 1)
        return line.rstrip(b"\r").decode("utf-8", "replace")

    def reply(self):
        lines = []
        while True:
            l = self.line()
            if l is None:
                break
            lines.append(l)
            if len(l) < 4 or l[3] != "-":
                break
        for l in lines:
            print(l, flush=True)
        return lines


def main():
    s = connect(sys.argv[1])
    r = Reader(s)
    if len(sys.argv) < 3:
        # send from a thread while replies are read: a long pipelined
        # input must not fill both socket buffers and stall both sides
        data = sys.stdin.buffer.read()
        threading.Thread(target=s.sendall, args=(data,), daemon=True).start()
    else:
        for step in open(sys.argv[2], encoding="utf-8").read().splitlines():
            op, _, arg = step.partition(" ")
            if op == "S":
                s.sendall(arg.encode() + b"\r\n")
            elif op == "F":
                s.sendall(open(arg, "rb").read())
            elif op == "R":
                r.reply()
            elif op == "Z":
                time.sleep(float(arg))
            elif op == "W":
                for _ in range(600):
                    if os.path.exists(arg):
                        break
                    time.sleep(0.1)
            elif op == "X":
                subprocess.run(arg, shell=True, check=False)
            elif op == "C":
                s.close()
                return
    while r.reply():
        pass
    s.close()


main()
