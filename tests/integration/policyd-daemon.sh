#!/bin/bash
# policyd-daemon.sh - postroom-policyd as a daemon: -t, refusing bad or
# dangerous configurations (MX mode without hosted domains, no HMAC
# secret with SPF on, bad zone list), privilege drop, /metrics and
# /healthz, and hosted-domain changes seen at once through LISTEN/NOTIFY
# although the cache would keep them an hour.
set -u
. "$(dirname "$0")/../lib/tap.sh"
. "$POSTROOM_SRCDIR/tests/lib/pg.sh"
. "$POSTROOM_SRCDIR/tests/lib/ports.sh"
. "$POSTROOM_SRCDIR/tests/integration/policyd-lib.bash"
PD="$POSTROOM_BUILDDIR/postroom-policyd"

pg_start && pg_fresh_db policyd || { fail "PostgreSQL"; done_testing; }

pd_conf "rules.mx_enabled = true" "policyd.spf = false"
run_status 0 "-t: valid configuration" "$PD" -t -c "$PD_CONF"
like "$(cat "$TAP_TMP/out")" "configuration .* is valid" "-t says so"
run_status 78 "MX mode without a hosted domain: refused at start" "$PD" -f -c "$PD_CONF"
like "$(cat "$TAP_TMP/err")" "rules.mx_enabled is on but no hosted domain exists" "and says why"
pd_conf "policyd.dnsbl_zones = \"bl.example:drop\""
run_status 78 "-t: bad DNSBL zone list refused" "$PD" -t -c "$PD_CONF"
pd_conf "policyd.dns_server = \"resolver.example\""
run_status 78 "-t: DNS server given by name refused" "$PD" -t -c "$PD_CONF"
pd_conf "policyd.spf = true"
sed -i 's/hmac_secret = "[^"]*";//' "$PD_CONF"
run_status 78 "-t: SPF on without security.hmac_secret refused" "$PD" -t -c "$PD_CONF"
like "$(cat "$TAP_TMP/err")" "hmac_secret must be set" "names the missing secret"

pctl domain add postroom.test >/dev/null
pctl user add alice@postroom.test >/dev/null
mport=$(free_port)
pd_conf "rules.mx_enabled = true" "policyd.spf = false" "policyd.cache_ttl = 3600" \
	"policyd.cache_negative_ttl = 3600" "policyd.metrics_listen = \"127.0.0.1:$mport\"" \
	"policyd.request_timeout = 1"
pd_start || { fail "policyd starts"; done_testing; }
if [ -n "${PG_RUNAS:-}" ]; then
	is "$(ps -o user= -p "$PD_PID")" "$PG_RUNAS" "privileges dropped to policyd.user"
fi
rcpt() {
	action protocol_state=RCPT server_port=25 client_address=198.51.100.40 sender=x@example.org \
		sasl_username= recipient="$1"
}
is "$(rcpt bob@new.test)" "554 5.7.1 Relay access denied" "new.test not hosted yet"
pctl domain add new.test >/dev/null
pctl user add bob@new.test >/dev/null
for i in $(seq 30); do [ "$(rcpt bob@new.test)" = DUNNO ] && break; sleep 0.1; done
is "$(rcpt bob@new.test)" DUNNO "domain added: accepted at once (NOTIFY), despite cache_ttl 3600"
pctl domain remove new.test >/dev/null
for i in $(seq 30); do [ "$(rcpt bob@new.test)" != DUNNO ] && break; sleep 0.1; done
is "$(rcpt bob@new.test)" "554 5.7.1 Relay access denied" "domain removed: refused at once"

# a user or alias created at run time is accepted at once, although "unknown"
# was cached for policyd.cache_negative_ttl (3600 s): NOTIFY postroom_addresses
is "$(rcpt dave@postroom.test)" "550 5.1.1 User unknown" "unknown user refused (and cached as unknown)"
pctl user add dave@postroom.test >/dev/null
for i in $(seq 30); do [ "$(rcpt dave@postroom.test)" = DUNNO ] && break; sleep 0.1; done
is "$(rcpt dave@postroom.test)" DUNNO "user created: accepted at once, despite the cached 'unknown'"
is "$(rcpt sales@postroom.test)" "550 5.1.1 User unknown" "unknown alias refused (and cached)"
pctl alias add sales@postroom.test dave@postroom.test >/dev/null
for i in $(seq 30); do [ "$(rcpt sales@postroom.test)" = DUNNO ] && break; sleep 0.1; done
is "$(rcpt sales@postroom.test)" DUNNO "alias created: accepted at once"
pctl alias remove sales@postroom.test >/dev/null
for i in $(seq 30); do [ "$(rcpt sales@postroom.test)" != DUNNO ] && break; sleep 0.1; done
is "$(rcpt sales@postroom.test)" "550 5.1.1 User unknown" "alias removed: refused at once, despite cache_ttl 3600"

start=$(date +%s%N)
is "$(printf 'request=smtpd_access_policy\nprotocol_state=RCPT\n' | pd_req nohalfclose)" "<closed>" \
	"a request left unfinished is closed after policyd.request_timeout"
ms=$(( ($(date +%s%N) - start) / 1000000 ))
ok "[ $ms -ge 900 ] && [ $ms -lt 5000 ]" "after about 1 s (${ms} ms)"
like "$(cat "$TAP_TMP/policyd.log")" "request not finished in 1 s: closing" "and logged"

metrics=$(curl -s "http://127.0.0.1:$mport/metrics")
like "$metrics" 'postroom_policyd_requests_total\{state="RCPT",action="reject"\} [1-9]' "metrics: rejected RCPTs counted"
like "$metrics" 'postroom_policyd_requests_total\{state="RCPT",action="dunno"\} [1-9]' "metrics: accepted RCPTs counted"
like "$metrics" 'postroom_policyd_quota_refusals_total\{kind="messages"\} 0' "metrics: quota refusals"
like "$metrics" 'postroom_policyd_dns_seconds_bucket' "metrics: DNS latency histogram"
is "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$mport/healthz")" 200 "/healthz 200 with the database up"
is "$(rcpt alice@postroom.test)" DUNNO "alice accepted (now cached)"
pg_server_stop
is "$(rcpt alice@postroom.test)" DUNNO "database down: cached answers still served"
like "$(rcpt carol@postroom.test)" '^451 4\.3\.0 ' "database down: an uncached lookup defers (451 4.3.0), never accepts"
is "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$mport/healthz")" 503 "/healthz 503 with the database down"
pg_server_start
pd_done
