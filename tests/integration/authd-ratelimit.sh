#!/usr/bin/env bash
# authd-ratelimit.sh - brute-force protection with short configured
# windows: per-(IP, account) back-off (200 ms doubling to 400 ms) that
# leaves the IP's other accounts alone, a success clears it; per IP, 5
# failures (any accounts) -> a 3 s lockout during which even the right key
# fails, at once and without a bcrypt, and refused attempts do not extend
# it; other IPs unaffected. Per account: failures from many IPs arm a
# guard that refuses unknown IPs while the owner's known IP still logs in.
# Concurrent bursts: authd-admission.sh.
set -u
. "$(dirname "$0")/../lib/tap.sh"
. "$POSTROOM_SRCDIR/tests/lib/pg.sh"
. "$POSTROOM_SRCDIR/tests/lib/authd.sh"

pg_start || { fail "pg_start"; done_testing; }
pg_fresh_db authd_rl || { fail "pg_fresh_db"; done_testing; }
pctl user add u@example.test >/dev/null
pctl user add v@example.test >/dev/null
pctl user add w@example.test >/dev/null
pctl user add x@example.test >/dev/null
KEY=$(pctl --json key create u@example.test --scope smtp | jq -r .key)
KEYV=$(pctl --json key create v@example.test --scope smtp | jq -r .key)
KEYW=$(pctl --json key create w@example.test --scope smtp | jq -r .key)
KEYX=$(pctl --json key create x@example.test --scope smtp | jq -r .key)
BAD=pr_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA
AUTHD_EXTRA=("ip_backoff_initial_ms = 200;" "ip_backoff_max_ms = 400;" "ip_lockout_failures = 5;"
	"ip_failure_window = 60;" "ip_lockout_time = 3;" "account_failure_limit = 3;"
	"account_failure_window = 60;")
authd_start "$POSTROOM_CONF" && pass "authd_start" || { fail "authd_start"; done_testing; }
auth() { authd_client "$AUTHD_SOCKET" auth "$@"; }
THROTTLED="FAIL	1	reason=Too many failed attempts, try again later"
INVALID="FAIL	1	reason=Invalid address or API key"
m() { authd_metric "$1"; }
# seq_auth: "USER KEY RIP" lines on stdin, sent one after another on one
# connection within milliseconds; prints each answer (with its id)
seq_auth() {
	"$AUTHD_PYTHON" -c '
import base64, socket, sys
s = socket.socket(socket.AF_UNIX); s.settimeout(10); s.connect(sys.argv[1]); f = s.makefile("rb")
while f.readline().rstrip(b"\n") != b"DONE": pass
s.sendall(b"VERSION\t1\t0\nCPID\t1\n")
for i, l in enumerate(sys.stdin.read().split("\n")):
    if not l.strip(): continue
    u, k, ip = l.split()
    r = base64.b64encode(("\0%s\0%s" % (u, k)).encode()).decode()
    s.sendall(("AUTH\t%d\tPLAIN\tservice=smtp\trip=%s\tresp=%s\n" % (i + 1, ip, r)).encode())
    print(f.readline().decode().rstrip("\n"))
' "$AUTHD_SOCKET"
}

# back-off: refused right after a failure, fine once the window passed;
# the IP's other accounts are not refused (an office behind one NAT)
out=$(printf '%s\n' "w@example.test $BAD 203.0.113.1" "w@example.test $KEYW 203.0.113.1" \
	"u@example.test $KEY 203.0.113.1" | seq_auth)
is "$out" "${INVALID/	1	/	1	}
${THROTTLED/	1	/	2	}
OK	3	user=u@example.test" \
	"a failure, then the right key at once: refused inside the 200 ms window; another account at that IP is not"
sleep 0.25
is "$(auth w@example.test "$KEYW" --rip 203.0.113.1)" "OK	1	user=w@example.test" "right key accepted after the window"
is "$(auth w@example.test "$BAD" --rip 203.0.113.1)" "$INVALID" "a failure after the success"
sleep 0.25
is "$(auth w@example.test "$BAD" --rip 203.0.113.1)" "$INVALID" \
	"the success had reset the back-off to 200 ms"

# five failures from one IP: lockout
R=203.0.113.9
for i in 1 2 3 4 5; do
	r=$(auth "nobody$i@example.test" "$BAD" --rip $R)
	[ "$r" = "$INVALID" ] || fail "failure $i answered" "$r"
	[ "$i" -lt 5 ] && sleep 0.45
done
t0=$EPOCHREALTIME	# the fifth failure was answered before this
is "$(m postroom_authd_lockouts_total)" 1 "fifth failure locked the IP out"
b0=$(m postroom_authd_bcrypt_total)
is "$(auth u@example.test "$KEY" --rip $R)" "$THROTTLED" "locked out: even the right key fails"
sleep 1
is "$(auth u@example.test "$KEY" --rip $R)" "$THROTTLED" "still locked out after 1 s"
is "$(m postroom_authd_bcrypt_total)" "$b0" "refused attempts ran no bcrypt"
is "$(m 'postroom_authd_auth_failures_total{reason="throttled_ip"}')" 2 "refusals counted (2)"
is "$(m 'postroom_authd_auth_failures_total{reason="throttled_ip_account"}')" 1 \
	"the back-off refusal counted as throttled_ip_account"
is "$(auth u@example.test "$KEY" --rip 203.0.113.10)" "OK	1	user=u@example.test" "another IP is not affected"
# the lockout ends 3 s after the fifth failure, not after the refusals
while [ "$(echo "$EPOCHREALTIME - $t0 < 3.1" | bc)" = 1 ]; do sleep 0.1; done
is "$(auth u@example.test "$KEY" --rip $R)" "OK	1	user=u@example.test" \
	"after the 3 s lockout the right key works (refusals did not extend it)"

# IPv6: one /64 is one client
out=$(printf '%s\n' "x@example.test $BAD 2001:db8:1:2::1" "x@example.test $KEYX 2001:db8:1:2::99" \
	"x@example.test $KEYX 2001:db8:1:3::1" | seq_auth)
is "$out" "${INVALID/	1	/	1	}
${THROTTLED/	1	/	2	}
OK	3	user=x@example.test" "IPv6: a failure refuses the same /64 at once, not another /64"

# account guard: the owner logs in from a known IP; three IPs guess
is "$(auth v@example.test "$KEYV" --rip 192.0.2.50)" "OK	1	user=v@example.test" "owner logs in (IP now known)"
for ip in 198.51.100.1 198.51.100.2 198.51.100.3; do
	r=$(auth v@example.test "$BAD" --rip $ip)
	[ "$r" = "$INVALID" ] || fail "guess from $ip answered" "$r"
done
is "$(auth v@example.test "$KEYV" --rip 198.51.100.4)" "$THROTTLED" \
	"account under attack: an unknown IP is refused, even with the right key"
is "$(m 'postroom_authd_auth_failures_total{reason="throttled_account"}')" 1 "counted as throttled_account"
is "$(auth v@example.test "$KEYV" --rip 192.0.2.50)" "OK	1	user=v@example.test" \
	"the owner's known IP still logs in"
is "$(auth u@example.test "$KEY" --rip 198.51.100.4)" "OK	1	user=u@example.test" \
	"the same unknown IP may log in to other accounts"
authd_stop
ok authd_log_clean "no sanitizer report"
done_testing
