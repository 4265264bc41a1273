#!/usr/bin/env bash
# tests/long/two-hosts-failover.sh - database failover under a running MTA host (issue
# 23 part 2, the part of "two hosts on one database" that needs a standby):
# the pipeline of tests/lib/pipeline.sh (Postfix from contrib/postfix,
# authd, milter, policyd, the pipe to postroom-deliver) on a PostgreSQL
# primary with a synchronous streaming standby (synchronous_standby_names,
# synchronous_commit on), every daemon's conninfo naming both servers with
# target_session_attrs=read-write. While mail streams in, the primary is
# killed with SIGKILL and the standby promoted (pg_ctl promote): every
# message Postfix answered 250 is stored afterwards, exactly once, and
# mail queued and deferred during the switch arrives once.
# Needs root, postfix, swaks, jq, pg_basebackup. In tests/long (tools/check
# --long): about 200 s on a loaded 2-core machine, over the mta suite budget.
set -u
. "$(dirname "$0")/../lib/tap.sh"
. "$POSTROOM_SRCDIR/tests/lib/pg.sh"
. "$POSTROOM_SRCDIR/tests/lib/ports.sh"
. "$POSTROOM_SRCDIR/tests/lib/postfix.sh"
. "$POSTROOM_SRCDIR/tests/lib/pipeline.sh"

export PG_FSYNC=on # synchronous_commit on: what a synchronous standby needs
pipeline_start || { fail "pipeline starts"; done_testing; }
D=$PIPELINE_DOMAIN
PRIMARY=$PG_DIR

# ---- the standby: a base backup streaming from the primary -----------------------
SB=$TAP_TMP/standby
mkdir -p "$SB" && chmod 700 "$SB"
[ -n "$PG_RUNAS" ] && chown "$PG_RUNAS" "$SB"
pg_as "$PG_BINDIR/pg_basebackup" -D "$SB/data" -h "$PRIMARY" -p "$PGPORT" -U postroom -R -X stream \
	>"$SB/basebackup.log" 2>&1 || { fail "pg_basebackup" "$(cat "$SB/basebackup.log")"; done_testing; }
at_exit pg_as "$PG_BINDIR/pg_ctl" -D "$SB/data" -m immediate stop
pg_as "$PG_BINDIR/pg_ctl" -D "$SB/data" -l "$SB/server.log" -w -t 30 \
	-o "-k $SB -p $PGPORT -c listen_addresses= -c cluster_name=standby1" start >/dev/null ||
	{ fail "standby starts" "$(tail -n 20 "$SB/server.log")"; done_testing; }
psqlc "ALTER SYSTEM SET synchronous_standby_names = 'standby1'" >/dev/null
psqlc "SELECT pg_reload_conf()" >/dev/null
pipeline_wait_sql "SELECT sync_state FROM pg_stat_replication" sync 30
is "$(psqlc "SELECT application_name, sync_state FROM pg_stat_replication")" "standby1|sync" \
	"a synchronous streaming standby"

# ---- every daemon's conninfo names both servers ----------------------------------
sed -i "s|host=$PRIMARY port=$PGPORT|host=$PRIMARY,$SB port=$PGPORT,$PGPORT target_session_attrs=read-write|g" "$PIPELINE_CONF"
like "$(cat "$PIPELINE_CONF")" "target_session_attrs=read-write" "conninfo: host=primary,standby target_session_attrs=read-write"
for d in authd milter policyd; do pipeline_daemon_kill $d; done
for d in authd milter policyd; do pipeline_daemon_start $d || fail "$d restarts"; done
postconf -c "$PF_CONF" -e minimal_backoff_time=1s maximal_backoff_time=2s queue_run_delay=1s
pipeline_postfix_reload

stored() { psqlc "SELECT count(*) FROM emails WHERE message_id LIKE '$1-%'"; }
# stream N PREFIX: N messages, one SMTP session each, 0.1 s apart; the
# ids answered 250 at end of data on stdout, one a line
stream() {
	"$PL_PYTHON" - "$1" "$2" "$PF_PORT_MX" "alice@$D" <<'PY'
import smtplib, sys, time
n, prefix, port, rcpt = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
for i in range(1, n + 1):
    mid = "%s-%d@foreign.example" % (prefix, i)
    msg = ("From: sender@foreign.example\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: <%s>\r\n\r\n"
           "message %d\r\n" % (rcpt, mid, mid, i))
    try:
        s = smtplib.SMTP("127.0.0.1", port, timeout=30)
        s.sendmail("sender@foreign.example", [rcpt], msg)
        s.quit()
        print(mid, flush=True)
    except (smtplib.SMTPException, OSError) as e:
        print("refused %s: %s" % (mid, e), file=sys.stderr, flush=True)
    time.sleep(0.1)
PY
}

# ---- mail queued before the switch, its delivery held --------------------------------
postconf -c "$PF_CONF" -e defer_transports=postroom
pipeline_postfix_reload
stream 5 held >"$TAP_TMP/held.ok" 2>/dev/null
is "$(wc -l <"$TAP_TMP/held.ok")" 5 "5 messages queued (250), their delivery held"

# ---- the switch: SIGKILL the primary while mail streams in ---------------------------
stream 40 flow >"$TAP_TMP/flow.ok" 2>"$TAP_TMP/flow.err" &
spid=$!
sleep 2
kill -KILL "$(head -n 1 "$PRIMARY/data/postmaster.pid")"
diag "primary killed at t=${SECONDS}s"
# the held mail is tried now, with no primary: deferred
postconf -c "$PF_CONF" -e defer_transports=
pipeline_postfix_reload
postqueue -c "$PF_CONF" -f
for i in $(seq 50); do grep -q 'relay=postroom.*status=deferred.*unavailable' "$PF_LOG" && break; sleep 0.2; done
like "$(grep 'relay=postroom' "$PF_LOG" | grep -c 'status=deferred')" '^[1-9]' \
	"deliveries during the switch are deferred (4.3.0), not bounced"
sleep 1
pg_as "$PG_BINDIR/pg_ctl" -D "$SB/data" -w promote >/dev/null || fail "pg_ctl promote"
diag "standby promoted at t=${SECONDS}s"
wait $spid
export PGHOST=$SB # psqlc, pctl: the new primary
is "$(psqlc "SELECT pg_is_in_recovery()")" f "the standby is the primary now"

# ---- afterwards --------------------------------------------------------------------
acc=$(wc -l <"$TAP_TMP/flow.ok")
diag "$acc of 40 answered 250 during the switch; refused: $(wc -l <"$TAP_TMP/flow.err")"
for i in $(seq 120); do
	[ "$(pipeline_queue_count)" = 0 ] && break
	postqueue -c "$PF_CONF" -f
	sleep 0.5
done
is "$(pipeline_queue_count)" 0 "Postfix's queue drains onto the promoted standby"
is "$(stored held)" 5 "the mail deferred during the switch arrives"
missing=0
while read -r mid; do
	[ "$(psqlc "SELECT count(*) FROM emails WHERE message_id = '$mid'")" = 1 ] || missing=$((missing + 1))
done <"$TAP_TMP/flow.ok"
is "$missing" 0 "every one of the $acc messages answered 250 is stored, once"
is "$(psqlc "SELECT count(*) FROM (SELECT message_id FROM emails WHERE message_id IS NOT NULL GROUP BY message_id HAVING count(*) > 1) d")" 0 \
	"no message stored twice"
unlike "$(cat "$PF_LOG")" 'status=bounced' "nothing bounced"
# a new message after the switch, through the reconnected daemons
r=$(stream 1 after 2>&1)
pipeline_wait_sql "SELECT count(*) FROM emails WHERE message_id LIKE 'after-%'" 1 60
is "$(stored after)" 1 "mail after the switch: accepted and stored ($r)"

done_testing
