#!/usr/bin/env python3
"""authd_burst.py - send many authentication attempts to postroom-authd at
once and report how they were answered.

  authd_burst.py SOCKET [--conns N] [--after S] <LINES

LINES are "USER KEY RIP [TAG]"; KEY "-" stands for a fresh random wrong key
(distinct for each line, so no two attempts share a bcrypt). Every attempt
gets its own request id; the attempts are spread over N connections (default
one per attempt, at most 100 attempts on one connection: authd serves 128
open requests per connection). All connections are opened and greeted
first, then every AUTH is written as fast as the sockets take them; lines
with a TAG are sent S seconds (--after, default 0.05) after the others.
Prints one summary line

  ok N invalid N throttled N busy N tempfail N other N last_ms MS

(last_ms: from the first AUTH written to the last answer read), then for
each tagged line "TAG ANSWER MS" (MS from that line's AUTH to its answer).
"""
import base64, os, random, selectors, socket, string, sys, time

ALNUM = string.ascii_letters + string.digits


def wrong_key():
    return 'pr_' + ''.join(random.choice(ALNUM) for _ in range(40))


def connect(path):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(60)
    s.connect(path)
    f = s.makefile('rb')
    while f.readline().rstrip(b'\n') not in (b'DONE', b''):
        pass
    s.sendall(b'VERSION\t1\t0\nCPID\t1\n')
    return s, f


def classify(line):
    if line.startswith('OK\t'):
        return 'ok'
    if 'reason=Invalid address or API key' in line:
        return 'invalid'
    if 'reason=Too many failed attempts' in line:
        return 'throttled'
    if 'reason=Server busy' in line:
        return 'busy'
    if 'code=temp_fail' in line:
        return 'tempfail'
    return 'other'


def main():
    args = sys.argv[1:]
    path, nconns, after = args[0], 0, 0.05
    rest = args[1:]
    while rest:
        o = rest.pop(0)
        if o == '--conns':
            nconns = int(rest.pop(0))
        elif o == '--after':
            after = float(rest.pop(0))
    reqs = []
    for l in sys.stdin.read().split('\n'):
        p = l.split()
        if len(p) < 3:
            continue
        key = wrong_key() if p[1] == '-' else p[1]
        reqs.append(dict(user=p[0], key=key, rip=p[2], tag=p[3] if len(p) > 3 else None))
    if nconns <= 0:
        nconns = len(reqs)
    nconns = max(nconns, (len(reqs) + 99) // 100)
    conns = [connect(path) for _ in range(min(nconns, len(reqs)))]
    sel = selectors.DefaultSelector()
    bufs = {}
    for i, (s, f) in enumerate(conns):
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, i)
        bufs[i] = b''
    where = {}  # (conn, id) -> request
    for n, r in enumerate(reqs):
        r['conn'], r['id'] = n % len(conns), n // len(conns) + 1
        where[(r['conn'], r['id'])] = r

    def send(r):
        resp = base64.b64encode(('\0%s\0%s' % (r['user'], r['key'])).encode()).decode()
        line = 'AUTH\t%d\tPLAIN\tservice=smtp\trip=%s\tresp=%s\n' % (r['id'], r['rip'], resp)
        s = conns[r['conn']][0]
        s.setblocking(True)
        s.sendall(line.encode())
        s.setblocking(False)
        r['sent'] = time.monotonic()

    t0 = time.monotonic()
    for r in reqs:
        if not r['tag']:
            send(r)
    tagged = [r for r in reqs if r['tag']]
    if tagged:
        time.sleep(after)
        for r in tagged:
            send(r)
    left, last = len(reqs), t0
    deadline = t0 + 120
    while left > 0 and time.monotonic() < deadline:
        for k, _ in sel.select(timeout=1):
            i = k.data
            try:
                data = k.fileobj.recv(65536)
            except BlockingIOError:
                continue
            if not data:
                sel.unregister(k.fileobj)
                continue
            bufs[i] += data
            while b'\n' in bufs[i]:
                line, bufs[i] = bufs[i].split(b'\n', 1)
                line = line.decode('utf-8', 'replace')
                parts = line.split('\t')
                if parts[0] not in ('OK', 'FAIL') or len(parts) < 2:
                    continue
                r = where.get((i, int(parts[1])))
                if r is None or 'answer' in r:
                    continue
                r['answer'], r['at'] = line, time.monotonic()
                last = r['at']
                left -= 1
    counts = dict(ok=0, invalid=0, throttled=0, busy=0, tempfail=0, other=0)
    for r in reqs:
        counts[classify(r.get('answer', ''))] += 1
    print('ok %(ok)d invalid %(invalid)d throttled %(throttled)d busy %(busy)d '
          'tempfail %(tempfail)d other %(other)d' % counts + ' last_ms %.0f' % ((last - t0) * 1000))
    for r in tagged:
        a = r.get('answer', '<none>')
        ms = (r['at'] - r['sent']) * 1000 if 'at' in r else -1
        print('%s %s %.0f' % (r['tag'], classify(a) if 'answer' in r else 'none', ms))


if __name__ == '__main__':
    main()
