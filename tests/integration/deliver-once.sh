#!/usr/bin/env bash
# deliver-once.sh - exactly once (retries, one call per recipient), the
# exit statuses of PROTOCOLS.md section 3 (operator mistakes defer,
# database down defers with 4.3.0 and stores nothing, oversize bounces with
# 5.3.4), the HTTP notification (now sent by postroom-webhookd from the
# outbox: MISSION's body and key, once per event; an endpoint down never
# touches the delivery), and the setgid mode.
. "$(dirname "$0")/../lib/tap.sh"
. "$POSTROOM_SRCDIR/tests/lib/pg.sh"
. "$POSTROOM_SRCDIR/tests/lib/http.sh"
. "$POSTROOM_SRCDIR/tests/integration/deliver-helpers.bash"
pg_start && pg_fresh_db postroom || { fail "database ready"; done_testing; }
for u in alice bob carol; do pctl user add $u@example.com >/dev/null; done
count() { psqlc "SELECT count(*) FROM emails WHERE message_id = '$1'"; }

# --- exactly once --------------------------------------------------------------
f=$(msg_file once.eml <<'M'
From: dave@example.org
To: alice@example.com, bob@example.com, carol@example.com
Subject: once
Message-ID: <once-1@example.org>

one copy only
M
)
deliver_run "$f" -f dave@example.org -- alice@example.com
first=$D_ID
deliver_run "$f" -f dave@example.org -- alice@example.com
is "$D_RC" "0" "the same message again (an MTA retry): success"
is "$D_ID" "$first" "... the stored email is found"
like "$D_ERR" "result=already delivered" "... and nothing new is stored"
is "$(count once-1@example.org)" "1" "stored once"
# local(8)-style: one call per recipient, each with its own delivery lines
{ printf 'Return-Path: <dave@example.org>\nDelivered-To: bob@example.com\n'; cat "$f"; } >"$TAP_TMP/once-bob.eml"
{ printf 'From dave@example.org Mon Nov 23 00:00:00 2026\nDelivered-To: carol@example.com\n'; tr -d '\r' <"$f" | sed 's/$/\r/'; } >"$TAP_TMP/once-carol.eml"
deliver_run "$TAP_TMP/once-bob.eml" -f dave@example.org -- bob@example.com
is "$D_ID $D_RC" "$first 0" "a second recipient's call (with its Delivered-To) finds the same email"
deliver_run "$TAP_TMP/once-carol.eml" -f dave@example.org -- carol@example.com
is "$D_ID $D_RC" "$first 0" "a third with a From_ line and CRLF line endings too"
is "$(count once-1@example.org)" "1" "still one email"
is "$(mail_json "$first" | jq -r '[.recipients[] | "\(.address):\(.delivered)"] | join(" ")')" \
	"alice@example.com:true bob@example.com:true carol@example.com:true" "each call marked its recipient delivered"
cmp -s "$f" <(pctl mail raw "$first") && pass "the raw message is the first delivery's bytes" ||
	fail "the raw message is the first delivery's bytes"
# two identical deliveries at the same moment
f=$(msg_file race.eml <<'M'
From: dave@example.org
Subject: race
Message-ID: <race-1@example.org>

x
M
)
for r in alice bob carol alice; do
	"$DELIVER_BIN" -c "$POSTROOM_CONF" -f d@example.org -- $r@example.com <"$f" >"$TAP_TMP/race.$r" 2>&1 &
done
wait
is "$(count race-1@example.org)" "1" "four concurrent deliveries of one message store it once"
is "$(psqlc "SELECT count(*) FROM email_recipients r JOIN emails e ON e.id = r.email_id WHERE e.message_id = 'race-1@example.org' AND r.delivered")" \
	"3" "... with its three recipients delivered"
# a different message with the same Message-Id stays distinct
printf 'From: dave@example.org\nSubject: race\nMessage-ID: <race-1@example.org>\n\ny\n' >"$TAP_TMP/race2.eml"
deliver_run "$TAP_TMP/race2.eml" -f dave@example.org -- alice@example.com
is "$(count race-1@example.org)" "2" "same Message-Id, other content: another email"

# --- operator mistakes defer (75), never bounce --------------------------------
f=$(msg_file op.eml <<'M'
From: dave@example.org
Subject: operator
Message-ID: <op-1@example.org>

x
M
)
deliver_run "$f" -- alice@example.com
is "$D_RC" "75" "no -f and no SENDER: 75"
like "$D_OUT" "^4\.3\.5 " "... output starts with 4.3.5"
like "$D_ERR" "CONFIGURATION ERROR: no sender" "... and the log says so loudly"
deliver_run "$f" -f a@example.org
is "$D_RC" "75" "no recipient: 75"
deliver_run "$f" -f a@example.org -x -- alice@example.com
is "$D_RC" "75" "unknown option: 75"
deliver_run "$f" -f a@example.org -- '${recipient}'
is "$D_RC" "75" "a recipient that is no address (an unexpanded macro): 75"
"$DELIVER_BIN" -c "$TAP_TMP/missing.conf" -f a@example.org -- alice@example.com <"$f" >"$TAP_TMP/o" 2>&1
is "$?" "75" "missing configuration file: 75"
printf 'database = { conninfo = ' >"$TAP_TMP/broken.conf"
"$DELIVER_BIN" -c "$TAP_TMP/broken.conf" -f a@example.org -- alice@example.com <"$f" >"$TAP_TMP/o" 2>&1
is "$?" "75" "syntax error in the configuration: 75"
printf 'deliver = { no_such_thing = 1; };\n' >"$TAP_TMP/unknown.conf"
"$DELIVER_BIN" -c "$TAP_TMP/unknown.conf" -f a@example.org -- alice@example.com <"$f" >"$TAP_TMP/o" 2>&1
is "$?" "75" "unknown parameter: 75"
is "$(count op-1@example.org)" "0" "nothing stored by any of them"

# --- size limits: 5.3.4 bounces, nothing stored ------------------------------------
cp "$POSTROOM_CONF" "$TAP_TMP/limits.conf"
printf 'limits = { message_size_max = 2048; attachment_size_max = 1024; };\n' >>"$TAP_TMP/limits.conf"
# 1000 lines of "x" + LF = 2000 bytes; headers 48 bytes; with CRLF: 2048 + 1000 + 3 > 2048
{ printf 'From: dave@example.org\nSubject: big\nMessage-ID: <big-1@example.org>\n\n'; yes x | head -n 1000; } >"$TAP_TMP/big.eml"
"$DELIVER_BIN" -c "$TAP_TMP/limits.conf" -f d@example.org -- alice@example.com <"$TAP_TMP/big.eml" >"$TAP_TMP/o" 2>/dev/null
rc=$?
ok "[ $rc -ne 0 ] && [ $rc -ne 75 ] && [ $rc -ne 71 ]" "a message over the limit bounces (exit $rc, not a deferral)"
like "$(cat "$TAP_TMP/o")" "^5\.3\.4 message too big" "output starts with 5.3.4"
# exactly at the limit with CRLF counting: 2048 bytes counted
{ printf 'From: d@example.org\nMessage-ID: <fit-1@example.org>\n\n'; head -c 1990 /dev/zero | tr '\0' 'y'; printf '\n'; } >"$TAP_TMP/fit.eml"
is "$(( $(wc -c <"$TAP_TMP/fit.eml") + $(wc -l <"$TAP_TMP/fit.eml") ))" "2048" "(a message of exactly 2048 bytes with CRLF)"
"$DELIVER_BIN" -c "$TAP_TMP/limits.conf" -f d@example.org -- alice@example.com <"$TAP_TMP/fit.eml" >"$TAP_TMP/o" 2>&1
is "$?" "0" "a message of exactly the limit is delivered"
printf 'z' >>"$TAP_TMP/fit.eml"
sed -i 's/fit-1/fit-2/' "$TAP_TMP/fit.eml"
"$DELIVER_BIN" -c "$TAP_TMP/limits.conf" -f d@example.org -- alice@example.com <"$TAP_TMP/fit.eml" >"$TAP_TMP/o" 2>&1
like "$(cat "$TAP_TMP/o")" "^5\.3\.4" "one byte more bounces with 5.3.4"
{ printf 'From: dave@example.org\nSubject: att\nMessage-ID: <att-1@example.org>\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nhi\n--b\nContent-Type: application/octet-stream\nContent-Disposition: attachment; filename=big.bin\nContent-Transfer-Encoding: base64\n\n'
  head -c 1100 /dev/zero | base64; printf -- '--b--\n'; } >"$TAP_TMP/att.eml"
"$DELIVER_BIN" -v -c "$TAP_TMP/limits.conf" -f d@example.org -- alice@example.com <"$TAP_TMP/att.eml" >"$TAP_TMP/o" 2>"$TAP_TMP/e"
is "$?" "0" "an attachment of 1100 decoded bytes over a limit of 1024: stored, never bounced (a bounce after acceptance is backscatter)"
is "$(cat "$TAP_TMP/o")" "" "nothing on stdout: no DSN text"
is "$(psqlc "SELECT count(*) || ' ' || (SELECT count(*) FROM email_attachments a WHERE a.email_id = e.id) || ' ' || e.parse_problem || ' ' || length(r.content)
	FROM emails e JOIN email_raw r ON r.email_id = e.id WHERE e.message_id = 'att-1@example.org' GROUP BY e.id, r.content")" \
	"1 0 attachment of 1100 bytes exceeds limits.attachment_size_max (1024 bytes): not extracted $(wc -c <"$TAP_TMP/att.eml")" \
	"stored once, whole, without the attachment row, and flagged in parse_problem"
like "$(cat "$TAP_TMP/e")" "parse problem: attachment of 1100 bytes exceeds" "the log says why the attachment is missing"
is "$(psqlc "SELECT count(*) FROM emails WHERE message_id IN ('big-1@example.org', 'fit-2@example.org')")" \
	"0" "nothing stored for the oversize messages"

# --- database down: 75 4.3.0, nothing stored; the retry stores it once --------------
f=$(msg_file down.eml <<'M'
From: dave@example.org
Subject: while the database was down
Message-ID: <down-1@example.org>

x
M
)
pg_server_stop
deliver_run "$f" -f d@example.org -- alice@example.com
is "$D_RC" "75" "database stopped: exit 75 (the MTA retries)"
like "$D_OUT" "^4\.3\.0 " "output starts with 4.3.0"
pg_server_start
is "$(count down-1@example.org)" "0" "nothing stored"
deliver_run "$f" -f d@example.org -- alice@example.com
is "$D_RC" "0" "database back: the retry is delivered"
deliver_run "$f" -f d@example.org -- alice@example.com
is "$(count down-1@example.org)" "1" "stored once"
# a storage error in the middle of the transaction (a blob table refusing
# rows): 75, and not even the emails row stays
psqlc "CREATE FUNCTION fail_blob() RETURNS trigger LANGUAGE plpgsql AS \$\$ BEGIN RAISE EXCEPTION 'disk trouble' USING ERRCODE = '58030'; END \$\$;
       CREATE TRIGGER fail_blob BEFORE INSERT ON blobs FOR EACH ROW EXECUTE FUNCTION fail_blob();"
sed 's/att-1@/att-2@/' "$TAP_TMP/att.eml" >"$TAP_TMP/att2.eml"
deliver_run "$TAP_TMP/att2.eml" -f d@example.org -- alice@example.com
is "$D_RC" "75" "an I/O error while storing an attachment: 75"
is "$(count att-2@example.org)" "0" "... and nothing of the message is left (one transaction)"
psqlc "DROP TRIGGER fail_blob ON blobs"
deliver_run "$TAP_TMP/att.eml" -f d@example.org -- alice@example.com
is "$D_RC $(count att-1@example.org)" "0 1" "the retry stores it"

# a database whose schema was never migrated (an operator mistake): defer
psqlc "ALTER FUNCTION postroom_thread_email(uuid) RENAME TO postroom_thread_email_away"
sed 's/att-1@/schema-1@/' "$TAP_TMP/att.eml" >"$TAP_TMP/schema.eml"
deliver_run "$TAP_TMP/schema.eml" -f d@example.org -- bob@example.com
is "$D_RC" "75" "a schema without postroom's functions (not migrated): 75, never a bounce"
like "$D_OUT" "^4\.3\.0 " "... with 4.3.0"
psqlc "ALTER FUNCTION postroom_thread_email_away(uuid) RENAME TO postroom_thread_email"

# a database that hangs (a table locked by someone else): deliver.timeout
# defers before the MTA's own time limit (which would bounce)
cp "$POSTROOM_CONF" "$TAP_TMP/timeout.conf"
printf 'deliver = { timeout = 10; };\n' >>"$TAP_TMP/timeout.conf"
"$PG_BINDIR/psql" -qXAt -d "$POSTROOM_DB" -c "BEGIN" -c "LOCK TABLE emails IN ACCESS EXCLUSIVE MODE" \
	-c "SELECT pg_sleep(14)" -c "COMMIT" >/dev/null 2>&1 &
locker=$!
sleep 1
sed 's/att-1@/hang-1@/' "$TAP_TMP/att.eml" >"$TAP_TMP/hang.eml"
start=$(date +%s)
"$DELIVER_BIN" -c "$TAP_TMP/timeout.conf" -f d@example.org -- bob@example.com <"$TAP_TMP/hang.eml" >"$TAP_TMP/o" 2>&1
rc=$? secs=$(( $(date +%s) - start ))
is "$rc" "75" "database hanging: exit 75 after deliver.timeout"
like "$(cat "$TAP_TMP/o")" "^4\.3\.0 .*timed out" "... with 4.3.0"
ok "[ $secs -ge 9 ] && [ $secs -le 13 ]" "... after about 10 s (${secs}s)"
wait "$locker"
deliver_run "$TAP_TMP/hang.eml" -f d@example.org -- bob@example.com
is "$D_RC $(count hang-1@example.org)" "0 1" "the retry stores it once"

# --- HTTP notification (postroom-webhookd, the legacy format) -------------------
# postroom-deliver no longer POSTs anything itself: the events outbox is
# written in its transaction, and postroom-webhookd sends MISSION's body
# to deliver.notify_url, once per event and user.
http_rec_start
cp "$POSTROOM_CONF" "$TAP_TMP/notify.conf"
printf 'deliver = { notify_url = "%s/api/internal/notifications/new-email"; notify_key = "internal-key-1"; notify_timeout = 2; notify_connect_timeout = 1; };\n' \
	"$HTTP_REC_URL" >>"$TAP_TMP/notify.conf"
printf 'webhook = { poll_interval = 100; backoff_base = 1; backoff_max = 1; };\n' >>"$TAP_TMP/notify.conf"
"$POSTROOM_BUILDDIR/postroom-webhookd" -f -c "$TAP_TMP/notify.conf" >>"$TAP_TMP/webhookd.log" 2>&1 &
WHPID=$!
at_exit "kill $WHPID 2>/dev/null; wait $WHPID 2>/dev/null"
for i in $(seq 150); do
	[ "$(psqlc "SELECT count(*) FROM webhook_endpoints WHERE name = 'notify_url'")" = 1 ] && break
	sleep 0.2
done
f=$(msg_file n1.eml <<'M'
From: "Dave D." <dave@example.org>
To: alice@example.com
Subject: notify me
Message-ID: <n1@example.org>
Content-Type: multipart/mixed; boundary=b

--b
Content-Type: text/plain

hi
--b
Content-Type: application/pdf
Content-Disposition: attachment; filename=a.pdf

%PDF
--b--
M
)
"$DELIVER_BIN" -v -c "$TAP_TMP/notify.conf" -f d@example.org -- alice@example.com bob@example.com <"$f" >"$TAP_TMP/o" 2>"$TAP_TMP/e"
is "$?" "0" "delivered with a notification endpoint"
ok 'http_rec_wait 2 30' "postroom-webhookd sends the notification: one request per user"
id=$(psqlc "SELECT id FROM emails WHERE message_id = 'n1@example.org'")
req=$(head -n 1 "$HTTP_REC_OUT")
is "$(jq -r '"\(.method) \(.path)"' <<<"$req")" "POST /api/internal/notifications/new-email" "POST to the configured URL"
is "$(jq -r '.headers | to_entries[] | select(.key | ascii_downcase == "authorization") | .value' <<<"$req")" \
	"ApiKey internal-key-1" "Authorization: ApiKey <key>"
body=$(jq -r .body <<<"$req")
is "$(head -n 2 "$HTTP_REC_OUT" | jq -r '.body | fromjson | .userIds[]' | sort | paste -sd' ')" \
	"$(psqlc "SELECT string_agg(id::text, ' ' ORDER BY id::text) FROM users WHERE address IN ('alice@example.com', 'bob@example.com')")" \
	"userIds: the delivered, linked users (one each)"
is "$(jq -r '.email | "\(.id)|\(.from)|\(.fromDisplay)|\(.subject)|\(.hasAttachments)"' <<<"$body")" \
	"$id|dave@example.org|Dave D.|notify me|true" "email: id, from, fromDisplay, subject, hasAttachments"
like "$(jq -r .email.receivedAt <<<"$body")" '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$' "receivedAt in ISO 8601 UTC"
"$DELIVER_BIN" -c "$TAP_TMP/notify.conf" -f d@example.org -- alice@example.com <"$f" >/dev/null 2>&1
"$DELIVER_BIN" -c "$TAP_TMP/notify.conf" -f d@example.org -- carol@example.com <"$f" >/dev/null 2>&1
ok 'http_rec_wait 3 30' "a later recipient's call is notified"
sleep 1.5
is "$(http_rec_count)" "3" "exactly once per event: a redelivery to the same recipient notifies nobody"
is "$(sed -n 3p "$HTTP_REC_OUT" | jq -r .body | jq -r '.userIds | join(" ")')" \
	"$(psqlc "SELECT id FROM users WHERE address = 'carol@example.com'")" \
	"the later recipient's call notifies only that user"
# the endpoint down: the delivery neither waits nor warns; sent when it is back
http_rec_stop
f=$(msg_file n2.eml <<'M'
From: dave@example.org
Subject: endpoint down
Message-ID: <n2@example.org>

x
M
)
"$DELIVER_BIN" -v -c "$TAP_TMP/notify.conf" -f d@example.org -- alice@example.com <"$f" >"$TAP_TMP/o" 2>"$TAP_TMP/e"
is "$?" "0" "notification endpoint down: still delivered (exit 0)"
unlike "$(cat "$TAP_TMP/e")" "notification" "... postroom-deliver makes no request (no warning)"
is "$(count n2@example.org)" "1" "... and stored"
ok 'wait_queued() { for i in $(seq 100); do [ "$(psqlc "SELECT count(*) FROM webhook_deliveries WHERE attempts >= 1 AND last_status = 0")" -ge 1 ] && return 0; sleep 0.2; done; return 1; }; wait_queued' \
	"... postroom-webhookd keeps the event queued for a retry"
kill "$WHPID" 2>/dev/null
wait "$WHPID" 2>/dev/null

# --- setgid: a local user's uid, the secret readable by the group only ------------
if getent group postroom-dtest >/dev/null || groupadd --system postroom-dtest 2>/dev/null; then
	chmod 711 "$PG_DIR"
	cp "$DELIVER_BIN" "$TAP_TMP/deliver-sgid"
	chgrp postroom-dtest "$TAP_TMP/deliver-sgid" && chmod 2755 "$TAP_TMP/deliver-sgid"
	cp "$POSTROOM_CONF" "$TAP_TMP/secret.conf"
	chown root:postroom-dtest "$TAP_TMP/secret.conf" && chmod 640 "$TAP_TMP/secret.conf"
	f=$(msg_file sgid.eml <<'M'
From: dave@example.org
Subject: as a local user
Message-ID: <sgid-1@example.org>

x
M
)
	chmod 644 "$f"
	runuser -u nobody -- env SENDER=d@example.org RECIPIENT=alice@example.com PGHOST=/nonexistent \
		"$TAP_TMP/deliver-sgid" -c "$TAP_TMP/secret.conf" <"$f" >"$TAP_TMP/o" 2>&1
	is "$?" "0" "setgid: nobody delivers through the group-readable configuration"
	is "$(count sgid-1@example.org)" "1" "... stored (the caller's PGHOST ignored)"
	cp "$DELIVER_BIN" "$TAP_TMP/deliver-plain"
	chmod 755 "$TAP_TMP/deliver-plain"
	runuser -u nobody -- env SENDER=d@example.org RECIPIENT=alice@example.com \
		"$TAP_TMP/deliver-plain" -c "$TAP_TMP/secret.conf" <"$f" >"$TAP_TMP/o" 2>&1
	is "$?" "75" "without the setgid bit the configuration is unreadable: 75, not a bounce"
	chmod 664 "$TAP_TMP/secret.conf"
	runuser -u nobody -- env SENDER=d@example.org RECIPIENT=alice@example.com \
		"$TAP_TMP/deliver-sgid" -c "$TAP_TMP/secret.conf" <"$f" >"$TAP_TMP/o" 2>&1
	is "$?" "75" "setgid refuses a configuration its group may change"
	chmod 640 "$TAP_TMP/secret.conf"
	runuser -u nobody -- env SENDER=d@example.org RECIPIENT=alice@example.com \
		"$TAP_TMP/deliver-sgid" -c /etc/shadow <"$f" >"$TAP_TMP/o" 2>&1
	is "$?" "75" "setgid refuses a file not owned by root and its group"
else
	diag "cannot create a group: setgid tests skipped"
fi
done_testing
