#!/usr/bin/env python3
"""authd-revoke-race.py SOCKET USER KEYFILE CTL... - revocation against a login.

For each "ID KEY" line of KEYFILE: log in with KEY on one open connection (the
success is cached), run CTL... key revoke ID, and log in again the moment that
command returns, on the same connection (no process start in between, so the
window between "revoke returned" and "login arrives" is as short as a client
can make it). Prints one line per try: "n exit=STATUS before=REPLY after=REPLY"
(replies with TABs as spaces)."""
import base64, socket, subprocess, sys

def main():
    path, user, keyfile, ctl = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(30)
    s.connect(path)
    f = s.makefile('rb')
    s.sendall(b'VERSION\t1\t0\nCPID\t4243\n')
    while f.readline().rstrip(b'\n') not in (b'DONE', b''):
        pass
    rid = 0

    def login(key):
        nonlocal rid
        rid += 1
        resp = base64.b64encode(('\0%s\0%s' % (user, key)).encode()).decode()
        s.sendall(('AUTH\t%d\tPLAIN\tservice=smtp\tnologin\tlip=127.0.0.1\trip=192.0.2.77\tresp=%s\n'
                   % (rid, resp)).encode())
        line = f.readline().decode().rstrip('\n')
        return ' '.join(line.split('\t')[:1] + line.split('\t')[2:])

    for n, raw in enumerate(open(keyfile), 1):
        kid, key = raw.split()
        before = login(key)
        rc = subprocess.run(ctl + ['key', 'revoke', kid], stdout=subprocess.DEVNULL).returncode
        after = login(key)
        print('%d exit=%d before=%s after=%s' % (n, rc, before, after))
        sys.stdout.flush()

if __name__ == '__main__':
    main()
