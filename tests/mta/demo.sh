#!/usr/bin/env bash
# demo.sh - tools/demo, the README's "run it", does what it says: one
# command brings up the whole pipeline (private PostgreSQL, authd, milter,
# policyd, Postfix from contrib/postfix), sends an inbound message, two
# authenticated submissions with an attachment (587 STARTTLS, 465 TLS), a
# reply and a relay attempt through it, and shows what was stored; then
# `tools/demo stop` leaves nothing running and no files behind.
# Checked in the output and in the database: inbound stored in alice's
# mailbox, both submissions stored once with sent_by and the attachment,
# the reply in the first message's thread, the relay refused with
# 554 5.7.1; and the API key in no daemon's log nor Postfix's.
. "$(dirname "$0")/../lib/tap.sh"
. "$POSTROOM_SRCDIR/tests/lib/pg.sh"

DEMO=$TAP_TMP/demo
export POSTROOM_DEMO_DIR=$DEMO
etc_before=$(ls -la /etc/postfix 2>&1 | md5sum)
at_exit "$POSTROOM_SRCDIR/tools/demo" stop

t0=$(date +%s)
out=$("$POSTROOM_SRCDIR/tools/demo" 2>&1)
rc=$?
diag "tools/demo took $(( $(date +%s) - t0 )) s"
is "$rc" 0 "tools/demo exits 0"
[ "$rc" -eq 0 ] || printf '%s\n' "$out" | tail -n 40 | sed 's/^/#   /'
[ -f "$DEMO/pipeline.env" ] || { fail "the pipeline's environment file exists"; done_testing; }
. "$DEMO/pipeline.env"
D=$PIPELINE_DOMAIN

# ---- what it printed -------------------------------------------------------
is "$(printf '%s\n' "$out" | grep -c '^  250 2\.0\.0 Ok: queued as')" 4 \
	"four messages queued (inbound, 587, 465, reply)"
like "$(printf '%s\n' "$out" | grep -A1 '^relay attempt' | tail -n 1)" '^  554 5\.7\.1 .*Relay access denied$' \
	"the relay attempt is refused: 554 5.7.1 Relay access denied"
like "$(cat "$DEMO/logs/policyd.log")" 'relay attempt from .* to <victim@foreign\.example> refused' \
	"the relay attempt was refused by postroom-policyd (logged)"
like "$out" "== what the database holds: postroomctl mail list" "prints the stored mail"
is "$(printf '%s\n' "$out" | sed -n '/^== the thread of the first message/,/^== postroom demo is running/p' |
	grep -oE '(Re: )?Hello Alice$' | tr '\n' '|')" "Hello Alice|Re: Hello Alice|" \
	"prints the thread: the first message, then the reply"
like "$out" "API key of alice@$D: pr_[0-9A-Za-z]{40}" "prints alice's API key"
like "$out" "swaks --server 127\\.0\\.0\\.1:$PF_PORT_SUB --tls --auth PLAIN --auth-user alice@$D" \
	"prints a swaks line to try it by hand"
like "$out" "tools/demo stop" "says how to stop it"

# ---- what the database holds -------------------------------------------------
q() { psqlc "$1"; }
email() { q "SELECT id FROM emails WHERE message_id = '$1'"; }
for m in demo-1@example.net "demo-2@$D" "demo-3@$D" "demo-4@$D"; do
	is "$(q "SELECT count(*) FROM emails WHERE message_id = '$m'")" 1 "<$m> stored exactly once"
done
is "$(q "SELECT count(*) FROM emails")" 4 "four emails in all (the relay attempt stored nothing)"
e1=$(email demo-1@example.net)
e2=$(email "demo-2@$D")
e3=$(email "demo-3@$D")
e4=$(email "demo-4@$D")
j1=$(pctl --json mail show "$e1")
is "$(jq -r '.recipients[] | select(.delivered) | .user' <<<"$j1")" "alice@$D" \
	"inbound: delivered into alice's mailbox"
is "$(jq -r .sent_by <<<"$j1")" null "inbound: no sent_by"
for e in "$e2:587" "$e3:465"; do
	j=$(pctl --json mail show "${e%%:*}")
	is "$(jq -r .sent_by <<<"$j")" "alice@$D" "submission on ${e##*:}: sent_by alice"
	is "$(jq -r '[.attachments[].filename] | join(",")' <<<"$j")" numbers.txt \
		"submission on ${e##*:}: the attachment stored"
done
is "$(pctl --json mail show "$e2" | jq -r '.recipients[] | select(.delivered) | .user')" "bob@$D" \
	"submission to bob: in bob's mailbox too"
t1=$(pctl --json mail show "$e1" | jq -r .thread_id)
is "$(pctl --json mail show "$e4" | jq -r .thread_id)" "$t1" "the reply is in the first message's thread"
is "$(pctl --json thread show "$e1" | jq -r '[.[].message_id] | join(" ")')" \
	"demo-1@example.net demo-4@$D" "thread show: the first message, then the reply"

# ---- no key in the logs, the system Postfix untouched ------------------------
key=$(printf '%s\n' "$out" | sed -n "s/^API key of alice@$D: //p")
ok "[ -n '$key' ] && ! grep -rqF -- '$key' '$DEMO/logs/authd.log' '$DEMO/logs/milter.log' '$DEMO/logs/policyd.log' '$PF_LOG'" \
	"the API key is in no log (authd, milter, policyd, Postfix)"
ok "grep -q 'sasl_method=PLAIN, sasl_username=alice@$D' '$PF_LOG'" "Postfix logged the authenticated user"
is "$(ls -la /etc/postfix 2>&1 | md5sum)" "$etc_before" "/etc/postfix untouched"

# ---- tools/demo stop ---------------------------------------------------------
# NAME:PID of each process the pipeline recorded (the word its command
# line must contain, so that a pid reused by another process is not taken
# for a survivor)
pids=
for f in "$DEMO"/pids/*.pid; do
	n=$(basename "$f" .pid)
	case $n in postfix) w=master ;; postgres) w="$DEMO/pg" ;; *) w=postroom-$n ;; esac
	pids="$pids $w:$(cat "$f")"
done
master=$(cat "$DEMO/pids/postfix.pid" 2>/dev/null)
ok "[ \$(echo $pids | wc -w) -ge 5 ]" "pids of authd, milter, policyd, Postfix, PostgreSQL recorded ($pids)"
run_status 0 "tools/demo stop exits 0" "$POSTROOM_SRCDIR/tools/demo" stop
alive=
for wp in $pids; do
	p=${wp##*:}
	ps -o args= -p "$p" 2>/dev/null | grep -qF -- "${wp%:*}" && alive="$alive $wp"
done
is "$alive" "" "nothing of the demo is left running"
is "$(ps -eo sid= | awk -v s="$master" '$1 == s' | wc -l)" 0 "no process of its Postfix is left"
is "$(pgrep -f -- "$DEMO/" | wc -l)" 0 "no process names the demo's directory"
ok "[ ! -e '$DEMO' ]" "its directory is removed"
run_status 0 "tools/demo stop again: harmless" "$POSTROOM_SRCDIR/tools/demo" stop

done_testing
