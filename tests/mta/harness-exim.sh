#!/bin/bash
# harness-exim.sh - smoke test of tests/lib/exim.sh: the private Exim
# (unpacked from Debian packages, cached) runs `-bh 127.0.0.1` sessions
# against the minimal config: accepted and ACL-rejected recipients, and an
# EXIM_CONF_EXTRA override; and runs as a daemon on a loopback port.
# Needs root, apt-get (first run downloads), swaks.
set -u
. "$(dirname "$0")/../lib/tap.sh"
. "$POSTROOM_SRCDIR/tests/lib/ports.sh"
. "$POSTROOM_SRCDIR/tests/lib/exim.sh"

if exim_prepare; then pass "exim_prepare"; else fail "exim_prepare"; done_testing; fi
ok '[ -x "$EXIM_BIN" ]' "EXIM_BIN is executable"
conf=$(exim_conf_minimal "$TAP_TMP/exim")
ok '[ -f "$conf" ]' "exim_conf_minimal wrote $conf"
like "$(exim_run "$conf" -bV 2>&1)" 'Exim version 4\.96' "exim -C conf -bV"

# smtp IP LINES...: an SMTP session from IP on stdin of `exim -bh IP`; the
# replies, without exim's ">>>" debug lines and CRs
smtp() {
	local ip=$1; shift
	printf '%s\r\n' "$@" | exim_run "$conf" -bh "$ip" 2>&1 | grep -v '^>>>' | tr -d '\r'
}
out=$(smtp 127.0.0.1 "EHLO client.test" "MAIL FROM:<sender@example.org>" \
	"RCPT TO:<someone@postroom.test>" "RCPT TO:<rejected@postroom.test>" QUIT)
like "$out" '^220 exim\.postroom\.test ESMTP' "greeting"
like "$out" '250-exim\.postroom\.test Hello client\.test \[127\.0\.0\.1\]' "EHLO 250"
like "$out" '^250 OK' "MAIL FROM 250"
like "$out" '^250 Accepted' "RCPT to the test domain 250"
like "$out" '^550 rejected by test ACL' "RCPT denied by the ACL 550"
like "$out" '^221 ' "QUIT 221"

# relaying: allowed from 127.0.0.1, denied from another address
out=$(smtp 127.0.0.1 "EHLO client.test" "MAIL FROM:<a@example.org>" "RCPT TO:<x@elsewhere.example>" QUIT)
like "$out" '^250 Accepted' "relay from 127.0.0.1 accepted"
out=$(smtp 192.0.2.7 "EHLO client.test" "MAIL FROM:<a@example.org>" "RCPT TO:<x@elsewhere.example>" QUIT)
like "$out" '^550 relay not permitted' "relay from 192.0.2.7 denied"

# a daemon on a loopback high port takes a message and blackholes it
if exim_daemon "$conf"; then pass "exim_daemon on port $EXIM_PORT"; else fail "exim_daemon"; fi
out=$(swaks --server "127.0.0.1:$EXIM_PORT" --helo client.test --from a@example.org \
	--to someone@postroom.test 2>&1)
like "$out" '<- +250 OK id=' "daemon accepts a message"
for i in $(seq 50); do grep -q 'Completed' "$TAP_TMP/exim/log/mainlog" 2>/dev/null && break; sleep 0.1; done
like "$(cat "$TAP_TMP/exim/log/mainlog")" '=> :blackhole: <someone@postroom.test>' "delivered to :blackhole:"
pid=$EXIM_PID
exim_daemon_stop
ok '! kill -0 "$pid" 2>/dev/null' "daemon stopped"

# EXIM_CONF_EXTRA replaces a default (Exim refuses an option set twice)
EXIM_CONF_EXTRA=("hostlist relay_from_hosts = 192.0.2.0/24" "smtp_banner = \$primary_hostname postroom-harness")
conf=$(exim_conf_minimal "$TAP_TMP/exim2")
out=$(smtp 192.0.2.7 "EHLO client.test" "MAIL FROM:<a@example.org>" "RCPT TO:<x@elsewhere.example>" QUIT)
like "$out" '^220 exim\.postroom\.test postroom-harness' "EXIM_CONF_EXTRA adds smtp_banner"
like "$out" '^250 Accepted' "EXIM_CONF_EXTRA replaces relay_from_hosts"

done_testing
