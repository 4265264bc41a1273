#!/usr/bin/env bash
# authd-ops.sh - running postroom-authd: -t, privilege drop and socket
# permissions, /healthz and /metrics, cached answers never waiting behind
# queued bcrypts, a burst of identical attempts costing one bcrypt, the
# queue limit, SIGHUP (reload, cache emptied), the
# database going away (temp_fail for uncached, cached still answered,
# reconnect with back-off, cache flushed once LISTEN is back), SIGTERM
# draining running verifications.
set -u
. "$(dirname "$0")/../lib/tap.sh"
. "$POSTROOM_SRCDIR/tests/lib/pg.sh"
. "$POSTROOM_SRCDIR/tests/lib/authd.sh"
AUTHD=$POSTROOM_BUILDDIR/postroom-authd

pg_start || { fail "pg_start"; done_testing; }
pg_fresh_db authd_ops || { fail "pg_fresh_db"; done_testing; }

# -t
conf=$TAP_TMP/t.conf
printf 'authd = { listen = "unix:%s/x"; user = "nobody"; };\n' "$TAP_TMP" >"$conf"
run_status 0 "-t accepts a valid configuration" "$AUTHD" -t -c "$conf"
like "$(cat "$TAP_TMP/out")" "configuration .*t.conf is valid" "-t says so"
ok '[ ! -e "$TAP_TMP/x" ]' "-t opens no socket"
for bad in 'authd = { socket_mode = "999"; };' 'authd = { cache_ttl = -1; };' \
	'authd = { no_such_parameter = 1; };' 'security = { hmac_secret = "short"; };' \
	'authd = { ip_backoff_initial_ms = 5000; ip_backoff_max_ms = 1000; };'; do
	printf '%s\n' "$bad" >"$conf"
	chmod 600 "$conf"
	run_status 78 "-t refuses: $bad" "$AUTHD" -t -c "$conf"
done

# users and keys; one key hashed at cost 12 (slow, about 250 ms here)
pctl user add u@example.test >/dev/null
pctl user add slow@example.test >/dev/null
KEY=$(pctl --json key create u@example.test --scope smtp | jq -r .key)
KEY2=$(pctl --json key create u@example.test --scope smtp | jq -r .key)
sed 's/bcrypt_cost = [0-9]*/bcrypt_cost = 12/' "$POSTROOM_CONF" >"$TAP_TMP/slow.conf"
chmod 600 "$TAP_TMP/slow.conf"
SLOW=$("$POSTROOM_BUILDDIR/postroomctl" -c "$TAP_TMP/slow.conf" --json key create slow@example.test --scope smtp | jq -r .key)
export SLOW KEY
# wrong_key(i) in the Python below: the slow key's prefix (so the cost-12
# hash is verified) with another ending, distinct per request (identical
# attempts would share one bcrypt)

AUTHD_EXTRA=("workers = 2;" "ip_lockout_failures = 0;" "ip_account_lockout_failures = 0;" "ip_backoff_initial_ms = 0;" "ip_backoff_max_ms = 0;"
	"account_failure_limit = 1000;")
authd_start "$POSTROOM_CONF" && pass "authd_start" || { fail "authd_start"; done_testing; }
auth() { authd_client "$AUTHD_SOCKET" auth "$@"; }

# privileges and the socket
if [ "$(id -u)" -eq 0 ] && [ -n "${PG_RUNAS:-}" ]; then
	is "$(ps -o user= -p "$AUTHD_PID" | tr -d ' ')" "$PG_RUNAS" "runs as authd.user after start-up"
	is "$(awk '/^Uid:/ { print $2 "/" $3 "/" $4 "/" $5 }' /proc/$AUTHD_PID/status)" \
		"$(id -u "$PG_RUNAS")/$(id -u "$PG_RUNAS")/$(id -u "$PG_RUNAS")/$(id -u "$PG_RUNAS")" \
		"real, effective, saved and fs uid all dropped"
fi
if id postfix >/dev/null 2>&1; then
	is "$(stat -c '%a %U' "$AUTHD_SOCKET")" "660 postfix" "socket mode 0660, owned by postfix"
fi

# health and metrics
is "$(curl -s -o /dev/null -w '%{http_code}' "http://$AUTHD_METRICS/healthz")" 200 "/healthz 200"
like "$(curl -s "http://$AUTHD_METRICS/metrics")" '# TYPE postroom_authd_bcrypt_queue_depth gauge' \
	"/metrics in Prometheus text format"

is "$(auth u@example.test "$KEY")" "OK	1	user=u@example.test" "good key (cached from now on)"

# cached answers do not wait behind bcrypts: 8 slow verifications queued
# on 2 workers (about 1 s of work), then cached requests, timed
"$AUTHD_PYTHON" - "$AUTHD_SOCKET" >"$TAP_TMP/burst.out" 2>&1 <<'PY'
import base64, os, socket, sys, time
path = sys.argv[1]
def conn():
    s = socket.socket(socket.AF_UNIX); s.settimeout(20); s.connect(path)
    f = s.makefile('rb')
    while f.readline().rstrip(b'\n') != b'DONE': pass
    s.sendall(b'VERSION\t1\t0\nCPID\t1\n')
    return s, f
def req(s, rid, user, key, rip):
    resp = base64.b64encode(b'\0' + user.encode() + b'\0' + key.encode())
    s.sendall(b'AUTH\t%d\tPLAIN\tservice=smtp\trip=%s\tresp=%s\n' % (rid, rip.encode(), resp))
slow = [conn() for _ in range(8)]
t0 = time.monotonic()
def wrong_key(i):
    k = os.environ['SLOW']
    return k[:40] + 'xyzXYZ'[i % 6] + 'ABCDEFGHIJ'[i // 6] + ('q' if k[-1] != 'q' else 'r')
for i, (s, f) in enumerate(slow):
    req(s, 1, 'slow@example.test', wrong_key(i), '10.9.0.%d' % i)
time.sleep(0.05)
s, f = conn()
lat = []
for i in range(1, 21):
    t = time.monotonic(); req(s, i, 'u@example.test', os.environ['KEY'], '10.8.0.1')
    line = f.readline(); lat.append(time.monotonic() - t)
    assert line.startswith(b'OK\t%d' % i), line
cached_done = time.monotonic() - t0
answers = [f2.readline() for s2, f2 in slow]
slow_done = time.monotonic() - t0
print('cached_max_ms %.1f' % (max(lat) * 1000))
print('cached_done_before_slow %d' % (cached_done < slow_done))
print('slow_answers %d' % sum(a.startswith(b'FAIL\t1\treason=Invalid') for a in answers))
print('slow_total_ms %.0f' % (slow_done * 1000))
PY
cat "$TAP_TMP/burst.out" | sed 's/^/# /'
max=$(awk '/cached_max_ms/ { print $2 }' "$TAP_TMP/burst.out")
ok '[ -n "$max" ] && [ "$(echo "$max < 50" | bc)" = 1 ]' "cached requests answered in < 50 ms while 8 bcrypts queue (max $max ms)"
like "$(cat "$TAP_TMP/burst.out")" 'cached_done_before_slow 1' "cached answers came before the queued verifications finished"
like "$(cat "$TAP_TMP/burst.out")" 'slow_answers 8' "all 8 queued verifications answered FAIL"

# a burst of identical uncached attempts (50 smtpds after a purge): one
# bcrypt, every one answered OK
export SLOW
b0=$(authd_metric postroom_authd_bcrypt_total)
burst=$("$AUTHD_PYTHON" - "$AUTHD_SOCKET" <<'PY'
import base64, os, socket, sys
conns = []
for i in range(10):
    s = socket.socket(socket.AF_UNIX); s.settimeout(20); s.connect(sys.argv[1])
    f = s.makefile('rb')
    while f.readline().rstrip(b'\n') != b'DONE': pass
    conns.append((s, f))
resp = base64.b64encode(b'\0slow@example.test\0' + os.environ['SLOW'].encode())
for i, (s, f) in enumerate(conns):
    s.sendall(b'VERSION\t1\t0\nCPID\t1\nAUTH\t1\tPLAIN\trip=10.5.0.%d\tresp=%s\n' % (i, resp))
print('ok', sum(f.readline() == b'OK\t1\tuser=slow@example.test\n' for s, f in conns))
PY
)
is "$burst" "ok 10" "10 identical uncached attempts at once: all OK"
is "$(( $(authd_metric postroom_authd_bcrypt_total) - b0 ))" 1 "... after one bcrypt (the others waited for it)"
is "$(authd_metric postroom_authd_coalesced_total)" 9 "9 attempts coalesced (metric)"

# SIGHUP: new settings (queue_max 1), cache emptied
sed -i 's/^  workers = 2;/  workers = 2;\n  queue_max = 1;/' "$AUTHD_CONF"
b0=$(authd_metric postroom_authd_bcrypt_total)
kill -HUP "$AUTHD_PID"
for i in $(seq 50); do grep -q 'configuration reloaded' "$AUTHD_LOG" && break; sleep 0.1; done
ok 'grep -q "configuration reloaded, cache emptied" "$AUTHD_LOG"' "SIGHUP reloads"
is "$(auth u@example.test "$KEY")" "OK	1	user=u@example.test" "good key after SIGHUP"
is "$(( $(authd_metric postroom_authd_bcrypt_total) - b0 ))" 1 "the cache was emptied (one bcrypt)"
busy=$("$AUTHD_PYTHON" - "$AUTHD_SOCKET" <<'PY'
import base64, os, socket, sys
out = []
conns = []
for i in range(3):
    s = socket.socket(socket.AF_UNIX); s.settimeout(20); s.connect(sys.argv[1])
    f = s.makefile('rb')
    while f.readline().rstrip(b'\n') != b'DONE': pass
    k = os.environ['SLOW']; k = k[:41] + 'xyz'[i] + ('q' if k[-1] != 'q' else 'r')
    resp = base64.b64encode(b'\0slow@example.test\0' + k.encode())
    s.sendall(b'VERSION\t1\t0\nCPID\t1\nAUTH\t1\tPLAIN\trip=10.7.0.%d\tresp=%s\n' % (i, resp))
    conns.append((s, f))
answers = [f.readline().decode().strip() for s, f in conns]
print('busy', sum(a == 'FAIL\t1\tcode=temp_fail\treason=Server busy, try again later' for a in answers))
PY
)
is "$busy" "busy 2" \
	"queue_max (reloaded to 1): 3 at once, the 2 beyond are refused at once with temp_fail"
sed -i '/^  queue_max = 1;/d' "$AUTHD_CONF"
kill -HUP "$AUTHD_PID"
sleep 0.3

# the database goes away
is "$(auth u@example.test "$KEY")" "OK	1	user=u@example.test" "cached before the outage"
pg_server_stop
is "$(auth u@example.test "$KEY")" "OK	1	user=u@example.test" "database down: cached success still answered"
is "$(auth u@example.test "$KEY2")" "FAIL	1	code=temp_fail	reason=Temporary authentication failure, try again later" \
	"database down: uncached attempt gets FAIL code=temp_fail"
t0=$EPOCHREALTIME
r=$(auth u@example.test "$KEY2")
is "$r" "FAIL	1	code=temp_fail	reason=Temporary authentication failure, try again later" "again temp_fail (backing off)"
ok '[ "$(echo "$EPOCHREALTIME - $t0 < 1" | bc)" = 1 ]' "answered at once while backing off"
for i in $(seq 30); do [ "$(authd_metric postroom_authd_db_up)" = 0 ] && break; sleep 0.1; done
is "$(authd_metric postroom_authd_db_up)" 0 "postroom_authd_db_up 0"
is "$(curl -s -o /dev/null -w '%{http_code}' "http://$AUTHD_METRICS/healthz")" 503 "/healthz 503 while the database is down"
n0=$(grep -c 'LISTEN postroom_keys' "$AUTHD_LOG")
pg_server_start
got=
for i in $(seq 80); do
	got=$(auth u@example.test "$KEY2")
	[ "${got:0:2}" = OK ] && break
	sleep 0.25
done
is "$got" "OK	1	user=u@example.test" "database back: uncached attempt verified again"
for i in $(seq 80); do [ "$(grep -c 'LISTEN postroom_keys' "$AUTHD_LOG")" -gt "$n0" ] && break; sleep 0.25; done
ok '[ "$(grep -c "LISTEN postroom_keys" "$AUTHD_LOG")" -gt "$n0" ]' "LISTEN re-established"
like "$(grep 'LISTEN postroom_keys' "$AUTHD_LOG" | tail -n 1)" 'cache entries flushed' \
	"cache flushed on reconnect (notifications may have been missed)"
is "$(curl -s -o /dev/null -w '%{http_code}' "http://$AUTHD_METRICS/healthz")" 200 "/healthz 200 again"

# SIGTERM drains: verifications under way are answered before exit. The
# signal is sent once authd has read all four requests (its attempts
# counter says so): a request still in the socket buffer is not under way,
# and on a loaded machine 50 ms was not always enough to read the fourth.
"$AUTHD_PYTHON" - "$AUTHD_SOCKET" "$AUTHD_PID" "$AUTHD_METRICS" \
	"$(authd_metric postroom_authd_auth_attempts_total)" >"$TAP_TMP/drain.out" 2>&1 <<'PY'
import base64, os, signal, socket, sys, time, urllib.request
def attempts():
    body = urllib.request.urlopen('http://%s/metrics' % sys.argv[3], timeout=5).read().decode()
    for line in body.splitlines():
        if line.startswith('postroom_authd_auth_attempts_total '):
            return float(line.split()[1])
    return 0.0
conns = []
for i in range(4):
    s = socket.socket(socket.AF_UNIX); s.settimeout(20); s.connect(sys.argv[1])
    f = s.makefile('rb')
    while f.readline().rstrip(b'\n') != b'DONE': pass
    k = os.environ['SLOW']; k = k[:41] + 'wxyz'[i] + ('q' if k[-1] != 'q' else 'r')
    resp = base64.b64encode(b'\0slow@example.test\0' + k.encode())
    s.sendall(b'VERSION\t1\t0\nCPID\t1\nAUTH\t1\tPLAIN\trip=10.6.0.%d\tresp=%s\n' % (i, resp))
    conns.append((s, f))
deadline = time.monotonic() + 10
while attempts() < float(sys.argv[4]) + 4 and time.monotonic() < deadline:
    time.sleep(0.01)
os.kill(int(sys.argv[2]), signal.SIGTERM)
print('answered', sum(f.readline().startswith(b'FAIL\t1\treason=Invalid') for s, f in conns))
PY
is "$(cat "$TAP_TMP/drain.out")" "answered 4" "SIGTERM: the 4 verifications under way were answered"
for i in $(seq 50); do kill -0 "$AUTHD_PID" 2>/dev/null || break; sleep 0.1; done
ok '! kill -0 "$AUTHD_PID" 2>/dev/null' "exited after draining"
wait "$AUTHD_PID"; st=$?
is "$st" 0 "exit status 0"
ok '[ ! -S "$AUTHD_SOCKET" ] || ! (exec 3<>/dev/null; "$AUTHD_PYTHON" -c "import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])" "$AUTHD_SOCKET" 2>/dev/null)' \
	"no longer accepting"
ok authd_log_clean "no sanitizer report"
done_testing
