#!/usr/bin/env bash
# deliver-mailbox-command.sh - the mailbox_command alternative of
# contrib/postfix/main.cf.postroom with a real Postfix 3.7 local(8): a
# private Postfix (tests/lib/postfix.sh) whose mailbox_command,
# message_size_limit and mailbox_size_limit are the contrib lines (only the
# program's path rewritten, to a setgid copy of postroom-deliver in this
# test's directory with -c), local Unix accounts made here (removed at
# exit), a private PostgreSQL (tests/lib/pg.sh). Cases: the contrib sizes
# keep local(8) running (Postfix's default mailbox_size_limit stops it);
# the setgid trade-off (not setgid: the user cannot read postroom.conf,
# deferred 4.3.5; setgid: delivered); one local user (stored, in the
# mailbox; the topmost Received: header stored names the queue id); two local
# users in one message (local(8) runs the command twice: stored once,
# both delivered); an unknown user (refused at RCPT by Postfix, nothing
# stored); a Unix account without a postroom user (bounced 5.1.1 by
# postroom-deliver; its command has -v, through mailbox_command_maps, so
# its log line shows in the bounce: it carries the queue id postroom-deliver
# read from the Received: header of smtpd, and of pickup for a local
# submission); the database down (deferred with 4.3.0, never
# bounced; stored once after it is back).
# Needs root, postfix, swaks, useradd.
set -u
. "$(dirname "$0")/../lib/tap.sh"
. "$POSTROOM_SRCDIR/tests/lib/pg.sh"
. "$POSTROOM_SRCDIR/tests/lib/ports.sh"
. "$POSTROOM_SRCDIR/tests/lib/postfix.sh"

C=$POSTROOM_SRCDIR/contrib/postfix/main.cf.postroom
D=example.test
SECRET=mailbox-command-secret-0123456789abcdefghijklmnopqrstuvwxyz

[ "$(id -u)" -eq 0 ] || { pass "# SKIP needs root (Unix accounts, setgid, Postfix)"; done_testing; }

# --- the contrib lines ------------------------------------------------------
cmd=$(sed -n 's/^#\(mailbox_command = .*\)$/\1/p' "$C")
is "$cmd" "mailbox_command = /usr/sbin/postroom-deliver" "contrib: the mailbox_command line (commented out)"
msl=$(grep '^message_size_limit = ' "$C")
mbl=$(grep '^mailbox_size_limit = ' "$C")
like "$mbl" '^mailbox_size_limit = [0-9]+$' "contrib: mailbox_size_limit is set ($mbl)"
ok '[ "${mbl##* }" -ge "${msl##* }" ]' "contrib: mailbox_size_limit >= message_size_limit"

# --- Unix accounts, the group, the setgid copy, postroom.conf ---------------
U1=prm$$a U2=prm$$b U3=prm$$c G=prm$$g
cleanup_accounts() {
	local u
	for u in "$U1" "$U2" "$U3"; do id "$u" >/dev/null 2>&1 && userdel "$u"; done
	getent group "$G" >/dev/null && groupdel "$G"
	return 0
}
at_exit cleanup_accounts
groupadd --system "$G" || fail "groupadd $G"
for u in "$U1" "$U2" "$U3"; do
	useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin \
		--user-group "$u" || fail "useradd $u"
done

pg_start && pg_fresh_db postroom || { fail "PostgreSQL starts"; done_testing; }
# local(8) runs the command as the recipient: it must reach the socket
chmod 711 "$PG_DIR"
pctl domain add "$D" >/dev/null && pctl user add "$U1@$D" >/dev/null &&
	pctl user add "$U2@$D" >/dev/null || fail "postroom users for $U1 and $U2"
# ($U3 is a Unix account without a postroom user)

M=$TAP_TMP/mbx
mkdir -p "$M" && chmod 755 "$M"
cp "$POSTROOM_BUILDDIR/postroom-deliver" "$M/postroom-deliver"
chown root:"$G" "$M/postroom-deliver" && chmod 0755 "$M/postroom-deliver"
cat >"$M/postroom.conf" <<EOF
# postroom.conf of tests/mta/deliver-mailbox-command.sh
database = { conninfo = "host=$PGHOST port=$PGPORT user=$PGUSER dbname=$POSTROOM_DB"; };
security = { hmac_secret = "$SECRET"; };
EOF
chown root:"$G" "$M/postroom.conf" && chmod 0640 "$M/postroom.conf"
# $U3 only: the same command with -v, so that its log lines (and with them
# the queue id it found) show in the output local(8) logs with a bounce
printf '%s %s\n' "$U3" "$M/postroom-deliver -v -c $M/postroom.conf" >"$M/commands"

# --- Postfix: local(8) for $D, the contrib lines ---------------------------
PF_MAIN_EXTRA=(
	"mydestination = $D"
	"local_transport = local"
	"alias_maps ="
	"local_recipient_maps = proxy:unix:passwd.byname"
	"${cmd/\/usr\/sbin\/postroom-deliver/$M/postroom-deliver -c $M/postroom.conf}"
	"mailbox_command_maps = texthash:$M/commands"
	"$msl"
	"minimal_backoff_time = 1s"
	"maximal_backoff_time = 2s"
	"queue_run_delay = 1s"
	"transport_retry_time = 1s"
	"service_throttle_time = 1s"
)
pf_start || { fail "Postfix starts"; done_testing; }
is "$(postconf -c "$PF_CONF" -h mailbox_command)" "$M/postroom-deliver -c $M/postroom.conf" \
	"Postfix runs the setgid copy as mailbox_command"

# send TO SUBJECT: one message from sender@foreign.example to the comma-
# separated TO; prints the queue id
send() {
	swaks --server "127.0.0.1:$PF_PORT_MX" --from sender@foreign.example --to "$1" \
		--header "Subject: $2" --header "Message-Id: <$2@foreign.example>" \
		--body "body of $2" 2>&1 | sed -n 's/.*250 2.0.0 Ok: queued as \([0-9A-Za-z]*\).*/\1/p'
}
# log_wait RE [S]: until the maillog matches
log_wait() { pf_wait_log "$@"; }
# flush_wait RE [S]: flush the queue every second until the maillog matches
# (a flush during a reload can be lost)
flush_wait() {
	local i
	for i in $(seq "${2:-20}"); do
		pf_flush
		pf_wait_log "$1" 1 2>/dev/null && return 0
	done
	echo "# flush_wait: no match for /$1/" >&2
	return 1
}
stored() { psqlc "SELECT count(*) FROM emails WHERE subject = '$1'"; }
mailbox() {
	psqlc "SELECT count(*) FROM email_recipients r JOIN emails e ON e.id = r.email_id
		JOIN users u ON u.id = r.user_id WHERE e.subject = '$1' AND r.delivered
		AND u.address = '$2'"
}

# --- without mailbox_size_limit, local(8) does not run ---------------------
q=$(send "$U1@$D" mc-nolimit)
like "$q" '^[0-9A-Za-z]+$' "a message for $U1 queued ($q)"
log_wait "mailbox_size_limit is smaller than message_size_limit" 15
like "$(grep -m1 'fatal: configuration error' "$PF_LOG")" \
	'fatal: configuration error: mailbox_size_limit is smaller than message_size_limit' \
	"Postfix's default mailbox_size_limit: local(8) stops (the fault of the old contrib lines)"
is "$(stored mc-nolimit)" 0 "nothing stored while local(8) cannot start"

# --- the contrib's mailbox_size_limit; postroom-deliver not setgid ----------
postconf -c "$PF_CONF" -e "$mbl" && postfix -c "$PF_CONF" reload >/dev/null 2>&1
flush_wait "$q: to=<$U1@$D>.*dsn=4\.3\.5, status=deferred"
like "$(grep "$q: to=<$U1@$D>" "$PF_LOG" | tail -n 1)" 'dsn=4\.3\.5, status=deferred' \
	"$mbl: local(8) runs the command; not setgid, $U1 cannot read postroom.conf: deferred 4.3.5"
is "$(grep -c 'status=bounced' "$PF_LOG")" 0 "a configuration error is never a bounce"

diag "t=${SECONDS}s"
# --- the setgid variant: one local user ------------------------------------
chmod 2755 "$M/postroom-deliver"
flush_wait "$q: to=<$U1@$D>.*status=sent"
like "$(grep "$q: to=<$U1@$D>" "$PF_LOG" | tail -n 1)" 'relay=local, .*status=sent \(delivered to command: ' \
	"setgid (chgrp $G, chmod 2755): local(8) delivered to the command"
is "$(stored mc-nolimit)" 1 "stored once"
is "$(mailbox mc-nolimit "$U1@$D")" 1 "in $U1's mailbox"
raw=$(pctl mail raw "$(psqlc "SELECT id FROM emails WHERE subject = 'mc-nolimit'")")
unlike "$(printf '%s\n' "$raw" | head -n 3)" '^(From |Return-Path:|Delivered-To:|X-Original-To:)' \
	"local(8)'s delivery lines are not stored"
like "$(printf '%s\n' "$raw" | grep -m1 -A3 '^Received:' | tr -d '\n')" "by mx\\.postroom\\.test \\(Postfix\\) with E?SMTPS? id $q" \
	"the topmost Received: header names Postfix's queue id $q"

q=$(send "$U1@$D" mc-one)
log_wait "$q: to=<$U1@$D>.*status=sent" 20 && pass "one local user: delivered ($q)" || fail "one local user: delivered ($q)"
is "$(stored mc-one) $(mailbox mc-one "$U1@$D")" "1 1" "one local user: stored once, in the mailbox"

diag "t=${SECONDS}s"
# --- two local users in one message ----------------------------------------
q=$(send "$U1@$D,$U2@$D" mc-two)
log_wait "$q: to=<$U2@$D>.*status=sent" 20 && log_wait "$q: to=<$U1@$D>.*status=sent" 20
is "$(grep -c "$q: to=<.*relay=local, .*status=sent (delivered to command" "$PF_LOG")" 2 \
	"two local users: local(8) ran the command twice"
is "$(stored mc-two)" 1 "two local users: stored once"
is "$(mailbox mc-two "$U1@$D") $(mailbox mc-two "$U2@$D")" "1 1" "two local users: in both mailboxes"

# --- an unknown user ---------------------------------------------------------
r=$(swaks --server "127.0.0.1:$PF_PORT_MX" --from sender@foreign.example --to "nosuch$$@$D" \
	--header "Subject: mc-unknown" 2>&1)
like "$(printf '%s\n' "$r" | grep '^<\*\*' | head -n 1)" '550 5\.1\.1 .*User unknown in local recipient table' \
	"unknown user: Postfix refuses it at RCPT (550 5.1.1, local_recipient_maps)"
is "$(stored mc-unknown)" 0 "unknown user: nothing stored"

# --- a Unix account without a postroom user; the queue id logged --------------
q=$(send "$U3@$D" mc-nouser)
log_wait "$q: to=<$U3@$D>.*status=bounced" 20
l=$(grep "$q: to=<$U3@$D>" "$PF_LOG" | tail -n 1)
like "$l" 'dsn=5\.1\.1, status=bounced' \
	"a Unix account without \`postroomctl user add\`: postroom-deliver refuses it (5.1.1), local(8) bounces"
is "$(stored mc-nouser)" 0 "nothing stored for it"
like "$l" "Command output: postroom-deliver[a-z-]*: $q: message-id=<mc-nouser@foreign\\.example>" \
	"postroom-deliver's log line carries Postfix's queue id $q (from the Received: header smtpd added)"
# a local submission: pickup's Received: header ("from userid 0")
printf 'From: sender@foreign.example\nSubject: mc-pickup\nMessage-Id: <mc-pickup@%s>\n\nlocal\n' "$D" |
	MAIL_CONFIG=$PF_CONF sendmail -f sender@foreign.example "$U3@$D"
log_wait "to=<$U3@$D>.*status=bounced.*mc-pickup" 20
l=$(grep "to=<$U3@$D>.*mc-pickup" "$PF_LOG" | tail -n 1)
q=${l#*: }; q=${q%%: *}
like "$l" "Command output: postroom-deliver[a-z-]*: $q: message-id=<mc-pickup@" \
	"a local submission (sendmail): the log line carries the queue id $q too (pickup's Received: header)"

diag "t=${SECONDS}s"
# --- the database down -------------------------------------------------------
pg_server_stop && pass "PostgreSQL stopped" || fail "PostgreSQL stopped"
q=$(send "$U1@$D" mc-dbdown)
log_wait "$q: to=<$U1@$D>.*status=deferred" 20
like "$(grep "$q: to=<$U1@$D>" "$PF_LOG" | tail -n 1)" 'dsn=4\.3\.0, status=deferred \(mail store unavailable' \
	"database down: deferred with 4.3.0"
# the queue manager logs "deferred" a moment before it moves the file from
# the active queue to the deferred one: wait for the move (up to 10 s)
for _ in $(seq 50); do
	pq=$(postqueue -c "$PF_CONF" -j)
	[[ $pq == *'"queue_name": "deferred"'* ]] && break
	sleep 0.2
done
like "$pq" "\"queue_name\": *\"deferred\", *\"queue_id\": *\"$q\".*\"delay_reason\": *\"mail store unavailable" \
	"database down: the message waits in the deferred queue (postqueue -j)"
is "$(grep -c "$q: .*status=bounced" "$PF_LOG")" 0 "database down: never bounced"
pg_server_start && pass "PostgreSQL started" || fail "PostgreSQL started"
flush_wait "$q: to=<$U1@$D>.*status=sent"
is "$(stored mc-dbdown) $(mailbox mc-dbdown "$U1@$D")" "1 1" "database back: stored once, in the mailbox"
is "$(grep -c 'status=bounced' "$PF_LOG")" 2 "the only bounces are those for the Unix account without a postroom user"
diag "t=${SECONDS}s"
done_testing
