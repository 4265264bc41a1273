#!/usr/bin/env python3
"""authd_client.py - a test client of the Dovecot auth-client protocol.

  authd_client.py SOCKET transcript FILE
      play FILE: "C <line>" lines are sent (\\t is a TAB, {b64:TEXT} is the
      base64 of TEXT, where \\0 is a NUL and ${VAR} an environment
      variable), "S" reads one server line, "S*" reads the greeting up to
      DONE, "W <seconds>" waits, "X <bytes> <id>" sends a line of that many
      'A' after "AUTH\\t<id>\\tPLAIN\\tresp=" (next line gives the id).
      Prints the transcript: client lines as written in FILE (before
      expansion, so keys never appear), server lines with TABs as \\t and
      the per-process values of the greeting (SPID, CUID, COOKIE) replaced
      by placeholders.
  authd_client.py SOCKET auth USER PASS [--mech PLAIN|LOGIN] [--rip IP]
      [--exim] [--count N] [--authzid Z]
      one connection, N sequential attempts (Postfix style: ids 1..N;
      --exim: greeting first, resp= always present); prints each final
      reply line.
Base64 here is Python's, independent of the server's own code.
"""
import base64, os, re, socket, sys, time

def connect(path):
    s = socket.socket(socket.AF_UNIX if path.startswith('/') else socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(10)
    if path.startswith('/'):
        s.connect(path)
    else:
        host, port = path.rsplit(':', 1)
        s.connect((host, int(port)))
    return s, s.makefile('rb')

def readline(f):
    line = f.readline()
    if not line:
        return None
    return line.rstrip(b'\n').decode('utf-8', 'replace')

def expand(text):
    text = re.sub(r'\$\{(\w+)\}', lambda m: os.environ.get(m.group(1), ''), text)
    def b64(m):
        raw = m.group(1).replace('\\0', '\0').encode()
        return base64.b64encode(raw).decode()
    text = re.sub(r'\{b64:(.*?)\}', b64, text)
    return text.replace('\\t', '\t')

def show(line):
    line = re.sub(r'^SPID\t\d+$', 'SPID\t<pid>', line)
    line = re.sub(r'^CUID\t\d+$', 'CUID\t<cuid>', line)
    line = re.sub(r'^COOKIE\t[0-9a-f]{32}$', 'COOKIE\t<cookie>', line)
    return line.replace('\t', '\\t')

def transcript(path, script):
    s, f = connect(path)
    out = []
    for raw in open(script, encoding='utf-8'):
        raw = raw.rstrip('\n')
        if not raw or raw.startswith('#'):
            continue
        op, _, arg = raw.partition(' ')
        try:
            if op == 'C':
                line = expand(arg)
                s.sendall(line.encode() + b'\n')
                out.append('C: ' + arg)
            elif op == 'X':
                n, _, rid = arg.partition(' ')
                line = 'AUTH\t%s\tPLAIN\tresp=' % rid + 'A' * int(n)
                s.sendall(line.encode() + b'\n')
                out.append('C: AUTH\\t%s\\tPLAIN\\tresp=<%s bytes of A>' % (rid, n))
            elif op == 'W':
                time.sleep(float(arg))
            elif op == 'S*':
                while True:
                    line = readline(f)
                    if line is None:
                        out.append('S: <EOF>')
                        break
                    out.append('S: ' + show(line))
                    if line == 'DONE':
                        break
            elif op == 'S':
                line = readline(f)
                out.append('S: ' + ('<EOF>' if line is None else show(line)))
            elif op == 'EOF':
                s.settimeout(2)
                try:
                    data = f.readline()
                    out.append('S: <EOF>' if not data else 'S: ' + show(data.decode().rstrip('\n')))
                except socket.timeout:
                    out.append('S: <still open>')
        except socket.timeout:
            out.append('S: <timeout>')
    print('\n'.join(out))

def auth(path, user, pw, mech='PLAIN', rip='192.0.2.10', exim=False, count=1, authzid=''):
    s, f = connect(path)
    if exim:
        while readline(f) not in ('DONE', None):
            pass
    s.sendall(b'VERSION\t1\t0\nCPID\t4242\n')
    if not exim:
        while readline(f) not in ('DONE', None):
            pass
    for i in range(1, count + 1):
        rid = 1 if exim else i
        if mech == 'PLAIN':
            resp = base64.b64encode(('%s\0%s\0%s' % (authzid, user, pw)).encode()).decode()
            s.sendall(('AUTH\t%d\tPLAIN\tservice=smtp\tnologin\tlip=127.0.0.1\trip=%s\tresp=%s\n'
                       % (rid, rip, resp)).encode())
            reply = readline(f)
        else:
            s.sendall(('AUTH\t%d\tLOGIN\tservice=smtp\tnologin\tlip=127.0.0.1\trip=%s%s\n'
                       % (rid, rip, '\tresp=' if exim else '')).encode())
            reply = readline(f)
            for answer in (user, pw):
                if reply is None or not reply.startswith('CONT'):
                    break
                s.sendall(('CONT\t%d\t%s\n' % (rid, base64.b64encode(answer.encode()).decode())).encode())
                reply = readline(f)
        print(reply if reply is not None else '<EOF>')
        sys.stdout.flush()
        if exim and i < count:
            s.close()
            s, f = connect(path)
            while readline(f) not in ('DONE', None):
                pass
            s.sendall(b'VERSION\t1\t0\nCPID\t4242\n')
    s.close()

def main():
    a = sys.argv[1:]
    if len(a) >= 3 and a[1] == 'transcript':
        transcript(a[0], a[2])
        return
    if len(a) >= 4 and a[1] == 'auth':
        opts = dict(mech='PLAIN', rip='192.0.2.10', exim=False, count=1, authzid='')
        rest = a[4:]
        while rest:
            o = rest.pop(0)
            if o == '--exim':
                opts['exim'] = True
            elif o == '--count':
                opts['count'] = int(rest.pop(0))
            else:
                opts[o[2:]] = rest.pop(0)
        auth(a[0], a[2], a[3], **opts)
        return
    sys.exit(__doc__)

if __name__ == '__main__':
    main()
