#!/usr/bin/env bash
# authd-protocol.sh - golden transcripts of the Dovecot auth-client protocol
# (tests/golden/authd/NAME.in played by tests/lib/authd_client.py, compared
# with NAME.ref): handshake order, PLAIN Postfix- and Exim-style, LOGIN in
# steps, interleaved requests, broken requests, long lines, a foreign
# protocol version. Then: many connections and requests at once, the
# daemon still answering after all of it, and the optional TCP listener.
set -u
. "$(dirname "$0")/../lib/tap.sh"
. "$POSTROOM_SRCDIR/tests/lib/pg.sh"
. "$POSTROOM_SRCDIR/tests/lib/authd.sh"

pg_start || { fail "pg_start"; done_testing; }
pg_fresh_db authd_proto || { fail "pg_fresh_db"; done_testing; }
pctl user add user@example.test >/dev/null
export U=user@example.test
KEY=$(pctl --json key create "$U" --scope smtp | jq -r .key)
export KEY
. "$POSTROOM_SRCDIR/tests/lib/ports.sh"
TCP_PORT=$(free_port)
AUTHD_EXTRA=("listen_inet = \"inet:127.0.0.1:$TCP_PORT\";")
authd_start "$POSTROOM_CONF" && pass "authd_start" || { fail "authd_start"; done_testing; }

for in in "$POSTROOM_SRCDIR"/tests/golden/authd/*.in; do
	name=$(basename "$in" .in)
	got=$(authd_client "$AUTHD_SOCKET" transcript "$in" 2>&1)
	want=$(cat "${in%.in}.ref")
	if [ "$got" = "$want" ]; then
		pass "transcript $name"
	else
		fail "transcript $name" "$(diff <(echo "$want") <(echo "$got") | head -20)"
	fi
done
ok 'kill -0 "$AUTHD_PID"' "daemon alive after the broken input"

# 100 connections at once (100 smtpd processes), 20 requests each, all
# answered on their own connection by id.
"$AUTHD_PYTHON" - "$AUTHD_SOCKET" "$U" "$KEY" >"$TAP_TMP/many.out" 2>&1 <<'PY'
import base64, socket, sys
path, user, key = sys.argv[1:4]
conns = []
for i in range(100):
    s = socket.socket(socket.AF_UNIX); s.settimeout(20); s.connect(path)
    f = s.makefile('rb')
    while f.readline().rstrip(b'\n') != b'DONE': pass
    s.sendall(b'VERSION\t1\t0\nCPID\t%d\n' % i)
    conns.append((s, f))
resp = base64.b64encode(b'\0' + user.encode() + b'\0' + key.encode())
ok = bad = 0
for rnd in range(1, 21):
    for s, f in conns:   # every connection has a request in flight
        s.sendall(b'AUTH\t%d\tPLAIN\tservice=smtp\trip=198.51.100.7\tresp=%s\n' % (rnd, resp))
    for s, f in conns:
        line = f.readline()
        if line == b'OK\t%d\tuser=%s\n' % (rnd, user.encode()): ok += 1
        else: bad += 1; print('bad', line)
print('ok', ok, 'bad', bad)
PY
like "$(tail -n 1 "$TAP_TMP/many.out")" '^ok 2000 bad 0$' "100 connections x 20 requests: 2000 OK by id"
is "$(authd_client "$AUTHD_SOCKET" auth "$U" "$KEY" --rip 198.51.100.8)" "OK	1	user=$U" "still answering"
is "$(authd_client "127.0.0.1:$TCP_PORT" auth "$U" "$KEY" --rip 198.51.100.9 --count 2)" "OK	1	user=$U
OK	2	user=$U" "the same protocol on the TCP listener (authd.listen_inet)"
authd_stop
ok authd_log_clean "no sanitizer report"
done_testing
