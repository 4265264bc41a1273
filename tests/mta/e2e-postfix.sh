#!/usr/bin/env bash
# e2e-postfix.sh - the whole pipeline the way an administrator installs it
# (tests/lib/pipeline.sh): one private Postfix built from
# contrib/postfix/main.cf.postroom and master.cf.postroom (only paths,
# ports, sockets, the certificate, the pipe's user and the chroot column
# rewritten, and checked to be so), postroom-authd, -milter, -policyd and
# -deliver, one postroom.conf; swaks as the client, on the real ports of
# this Postfix. Every row of MISSION.md's envelope tables (MX mode on, then
# off), AUTH PLAIN and LOGIN with good, wrong, unscoped and revoked keys
# and the lockout, inbound mail stored with its recipients linked, a
# Bcc-only recipient, attachments and an attached message, a reply
# threaded, sent mail with sent_by (and the relayed copy without
# postroom's internal headers), the HTTP notification, over-size mail
# refused at SIZE= and at end of data, a message delivered once per
# recipient stored once (the MTA's retry of a stored message: see
# fault-notify.sh), postmaster (a bare <Postmaster> and postmaster@ the
# hosted domain accepted and stored for rules.postmaster_address's owner,
# a foreign postmaster still a relay attempt), and pipeline_stop from a
# fresh shell ending it all.
# Needs root, postfix, swaks, jq, smtp-sink.
set -u
. "$(dirname "$0")/../lib/tap.sh"
. "$POSTROOM_SRCDIR/tests/lib/pg.sh"
. "$POSTROOM_SRCDIR/tests/lib/ports.sh"
. "$POSTROOM_SRCDIR/tests/lib/postfix.sh"
. "$POSTROOM_SRCDIR/tests/lib/http.sh"
. "$POSTROOM_SRCDIR/tests/lib/pipeline.sh"
. "$POSTROOM_SRCDIR/tests/lib/authd.sh"	# key_wrong
. "$POSTROOM_SRCDIR/tests/milter/milter.sh"	# smtp_reply

PIPELINE_NOTIFY=1
# a short per-IP back-off, so that the lockout is reached in a second
PIPELINE_CONF_EXTRA=("authd.ip_backoff_initial_ms = 50" "authd.ip_backoff_max_ms = 100")
# postmaster (RFC 5321 4.5.1): the bare <Postmaster> goes to the hosted
# domain's postmaster, which has no user or alias: bob receives it
PIPELINE_CONF_EXTRA+=("rules.postmaster_domain = \"${PIPELINE_DOMAIN:-example.test}\""
	"rules.postmaster_address = \"bob@${PIPELINE_DOMAIN:-example.test}\"")
pipeline_start || { fail "pipeline starts"; done_testing; }
pass "pipeline starts: PostgreSQL, authd, milter, policyd, Postfix from contrib/postfix"
D=$PIPELINE_DOMAIN
A=alice@$D
B=bob@$D
KEY=$PIPELINE_KEY

# ---- the contrib files are what runs ------------------------------------
diag "t=${SECONDS}s"
is "$(pipeline_rewrite_check)" ok "undoing the listed rewrites gives contrib/postfix/*.postroom byte for byte"
is "$(cut -f1 "$PIPELINE_DIR/contrib/main.cf.tsv" | tr '\n' ' ')" \
	"unix:/postroom/milter.sock inet:127.0.0.1:10045 /etc/postfix/ /etc/ssl/certs/mail.example.com.pem /etc/ssl/private/mail.example.com.key " \
	"main.cf: only the milter socket, the policyd port, /etc/postfix and the certificate rewritten"
is "$(cut -f1 "$PIPELINE_DIR/contrib/master.cf.tsv" | sed 's/ \+/ /g' | tr '\n' '|')" \
	"smtp inet n - y|submission inet n - y|submissions inet n - y|user=postroom |argv=/usr/sbin/postroom-deliver |" \
	"master.cf: only the listen addresses, the chroot column, the pipe's user and the program's path rewritten"
# the running configuration, read once: every contrib setting in force
# (nothing of the test instance's own main.cf overrides it)
running=$(postconf -c "$PF_CONF" -n 2>&1)
bad=0 n=0
while IFS= read -r l; do
	n=$((n + 1))
	name=${l%%=*}; name=${name%% }
	got=$(printf '%s\n' "$running" | grep -m1 -E "^$name =( |\$)")
	[ "$got" = "${l%"${l##*[! ]}"}" ] || { bad=$((bad + 1)); diag "running '$got', contrib '$l'"; }
done < <(_pl_main_lines)
is "$bad/$n" "0/$(grep -c '^[a-z]' "$POSTROOM_SRCDIR/contrib/postfix/main.cf.postroom")" \
	"every main.cf.postroom setting ($n) is in force in the running Postfix"
running=$(postconf -c "$PF_CONF" -P 2>&1)
bad=0 n=0
while read -r svc opt; do
	n=$((n + 1))
	printf '%s\n' "$running" | grep -qxF "$svc/inet/${opt%%=*} = ${opt#*=}" || { bad=$((bad + 1)); diag "$svc $opt not in force"; }
done < <(awk -v mx="$PF_PORT_MX" -v p587="$PF_PORT_SUB" -v p465="$PF_PORT_SUBS" '
	/^[a-z]/ { svc = ($1 == "smtp") ? "127.0.0.1:" mx : ($1 == "submission") ? "127.0.0.1:" p587 : ($1 == "submissions") ? "127.0.0.1:" p465 : "" }
	/^[ \t]+-o / && svc != "" { print svc, $2 }' "$POSTROOM_SRCDIR/contrib/postfix/master.cf.postroom")
is "$bad/$n" 0/12 "every -o option of master.cf.postroom (12) is in force on its service"
ok 'postconf -c "$PF_CONF" -M postroom/unix | grep -q "argv=$POSTROOM_BUILDDIR/postroom-deliver -c $PIPELINE_CONF -f \${sender} -a \${sasl_username}"' \
	"the postroom pipe service runs postroom-deliver with the contrib arguments"

# an outside MX that records what this Postfix relays (not part of contrib:
# the test instance's default_transport is discard)
SINK=$(free_port)
SINKDIR=$TAP_TMP/sink
mkdir -p "$SINKDIR" && chmod 1777 "$SINKDIR"
smtp-sink -u nobody -d "$SINKDIR/%H%M%S." "127.0.0.1:$SINK" 20 >/dev/null 2>&1 &
SINK_PID=$!
at_exit "kill $SINK_PID"
postconf -c "$PF_CONF" -e "default_transport = smtp:[127.0.0.1]:$SINK" &&
	postfix -c "$PF_CONF" reload >/dev/null 2>&1

TLS=(--tls)
TLSC=(--tls-on-connect)
AUTH=(--auth PLAIN --auth-user "$A" --auth-password "$KEY")

# row PORT-NAME STAGE FROM TO EXPECTED-RE DESC [swaks options]
row() {
	local pn=$1 stage=$2 from=$3 to=$4 re=$5 desc=$6 port r
	shift 6
	case $pn in
	mx) port=$PF_PORT_MX ;;
	587) port=$PF_PORT_SUB; set -- "${TLS[@]}" "$@" ;;
	465) port=$PF_PORT_SUBS; set -- "${TLSC[@]}" "$@" ;;
	esac
	r=$(smtp_reply "$stage" "$port" "$from" "$to" "$@")
	like "$r" "$re" "$desc ($pn, $stage: $r)"
}

# ---- envelope rules, MX mode on ------------------------------------------
diag "t=${SECONDS}s"
# sender table
row mx  MAIL someone@foreign.org "$A" '^250 ' "MX on, MX port, unauthenticated sender: accept"
row 587 MAIL "$A" friend@foreign.org '^250 ' "MX on, submission, authenticated sender: accept" "${AUTH[@]}"
row 465 MAIL "$A" friend@foreign.org '^250 ' "MX on, submissions, authenticated sender: accept" "${AUTH[@]}"
row 587 MAIL someone@foreign.org "$A" '^530 5\.7\.0 Authentication required$' "MX on, not the MX port, unauthenticated sender: reject"
row 465 MAIL someone@foreign.org "$A" '^530 5\.7\.0 Authentication required$' "MX on, not the MX port (465), unauthenticated sender: reject"
row 587 MAIL "$B" friend@foreign.org '^553 5\.7\.1 Sender address not owned by user$' "authenticated, another user's address: reject" "${AUTH[@]}"
# recipient table
row 587 RCPT "$A" friend@foreign.org '^250 ' "MX on, submission, authenticated: accept to anyone" "${AUTH[@]}"
row 465 RCPT "$A" friend@foreign.org '^250 ' "MX on, submissions, authenticated: accept to anyone" "${AUTH[@]}"
row 587 RCPT "$A" "$B" '^250 ' "MX on, submission, authenticated, hosted recipient: accept" "${AUTH[@]}"
row mx  RCPT someone@foreign.org "$A" '^250 ' "MX on, MX port, unauthenticated, hosted domain: accept"
row mx  RCPT someone@foreign.org "ALICE@$(echo "$D" | tr a-z A-Z)" '^250 ' "hosted domain and user compared case-insensitively: accept"
row mx  RCPT someone@foreign.org "alice+news@$D" '^250 ' "sub-address of a hosted user: accept"
row mx  RCPT someone@foreign.org victim@foreign.org '^554 5\.7\.1 .*Relay access denied' "MX on, MX port, unauthenticated, foreign domain: reject"
row mx  RCPT someone@foreign.org "nobody@$D" '^550 5\.1\.1 .*User unknown' "MX on, MX port, unauthenticated, unknown user: reject"
row 587 RCPT someone@foreign.org "$A" '^530 5\.7\.0 ' "MX on, not the MX port, unauthenticated recipient: reject"
for to in "user%foreign.org@$D" "foreign.org!user@$D" '"user@foreign.org"@'"$D" "alice@sub.$D"; do
	row mx RCPT someone@foreign.org "$to" '^5[0-9][0-9] ' "MX port, hostile form $to: reject"
done
ok 'grep -q "relay attempt" "$PIPELINE_DIR/logs/policyd.log" "$PIPELINE_DIR/logs/milter.log"' "the relay attempt is logged"

# ---- AUTH: PLAIN and LOGIN, good, wrong, unscoped, revoked, lockout --------
diag "t=${SECONDS}s"
KEY_IMAP=$(pctl --json key create "$A" --scope imap | jq -r .key)
KEY_REV=$(pctl --json key create "$A" --scope smtp | jq -r .key)
REV_ID=$(pctl --json key list "$A" | jq -r --arg p "${KEY_REV:3:12}" '.[] | select(.prefix == $p) | .id')
# auth IP MECH PASSWORD: the reply to AUTH on 587 from source address IP
auth() {
	swaks --server "127.0.0.1:$PF_PORT_SUB" --local-interface "$1" --tls --ehlo client.example \
		--auth "$2" --auth-user "$A" --auth-password "$3" --quit-after AUTH --timeout 20 2>&1 |
		sed -n 's/^<[~*]\** *\(23[0-9] .*\|5[0-9][0-9] .*\|4[0-9][0-9] .*\)$/\1/p' | tail -n 1
}
like "$(auth 127.0.0.11 PLAIN "$KEY")" '^235 2\.7\.0 ' "AUTH PLAIN, good key: 235"
like "$(auth 127.0.0.11 LOGIN "$KEY")" '^235 2\.7\.0 ' "AUTH LOGIN, good key: 235"
like "$(auth 127.0.0.12 PLAIN "$(key_wrong "$KEY")")" '^535 5\.7\.8 .*Invalid address or API key' "AUTH PLAIN, wrong key: 535"
like "$(auth 127.0.0.13 LOGIN "$(key_wrong "$KEY")")" '^535 5\.7\.8 .*Invalid address or API key' "AUTH LOGIN, wrong key: 535"
like "$(auth 127.0.0.14 PLAIN "$KEY_IMAP")" '^535 5\.7\.8 .*API key not valid for SMTP' "AUTH PLAIN, key without the smtp scope: 535"
like "$(auth 127.0.0.15 LOGIN "$KEY_IMAP")" '^535 5\.7\.8 .*API key not valid for SMTP' "AUTH LOGIN, key without the smtp scope: 535"
like "$(auth 127.0.0.16 PLAIN "$KEY_REV")" '^235 ' "key to be revoked: 235 (now cached)"
pctl key revoke "$REV_ID" >/dev/null
like "$(auth 127.0.0.17 PLAIN "$KEY_REV")" '^535 5\.7\.8 .*Invalid address or API key' "AUTH PLAIN, revoked key: 535 at once"
like "$(auth 127.0.0.18 LOGIN "$KEY_REV")" '^535 5\.7\.8 .*Invalid address or API key' "AUTH LOGIN, revoked key: 535"
for i in 1 2 3 4 5; do
	r=$(auth 127.0.0.19 PLAIN "$(key_wrong "$KEY")")
	sleep 0.2	# past the per-IP back-off: each attempt is a verification
done
like "$r" '^535 ' "five wrong keys from one address: 535 each ($r)"
r=$(auth 127.0.0.19 PLAIN "$KEY")
like "$r" '^535 ' "then that address is locked out, even with the good key ($r)"
ok 'grep -q "127\.0\.0\.19" "$PIPELINE_DIR/logs/authd.log" && grep -qi "lock" "$PIPELINE_DIR/logs/authd.log"' \
	"authd logs the lockout of 127.0.0.19"
like "$(auth 127.0.0.20 PLAIN "$KEY")" '^235 ' "another address still logs in with the good key"
ok '! grep -qF -- "${KEY:3}" "$PIPELINE_DIR"/logs/*.log "$PF_LOG"' "no log line contains the API key"

# ---- storing -----------------------------------------------------------
diag "t=${SECONDS}s"
# wait_stored SQL-COUNT N: until the query gives N (20 s)
wait_count() {
	local i
	for i in $(seq 100); do
		[ "$(psqlc "$1" 2>/dev/null)" = "$2" ] && return 0
		sleep 0.2
	done
	return 1
}
# inbound: To alice, bob only in the envelope (a Bcc), one attachment and
# an attached message
printf '%%PDF-1.4 not really a pdf %s\n' "$(head -c 300 /dev/urandom | base64 -w0)" >"$TAP_TMP/report.pdf"
printf 'From: Carol <carol@foreign.org>\nTo: Dave <dave@foreign.org>\nSubject: forwarded inner\nMessage-ID: <inner-1@foreign.org>\n\ninner body\n' >"$TAP_TMP/inner.eml"
r=$(smtp_reply DATA "$PF_PORT_MX" carol@foreign.org "$A,$B" \
	--header "From: Carol <carol@foreign.org>" --header "To: Alice <$A>" \
	--header "Subject: e2e inbound" --header "Message-ID: <e2e-in-1@foreign.org>" \
	--body "hello alice" --attach-type application/pdf --attach-name report.pdf --attach @"$TAP_TMP/report.pdf" \
	--attach-type message/rfc822 --attach @"$TAP_TMP/inner.eml")
like "$r" '^250 ' "inbound message with two attachments to alice (To) and bob (envelope only): queued ($r)"
wait_count "SELECT count(*) FROM email_recipients r JOIN emails e ON e.id = r.email_id WHERE trim(both '<>' from e.message_id) = 'e2e-in-1@foreign.org' AND delivered" 2
is "$(psqlc "SELECT count(*) FROM emails WHERE trim(both '<>' from message_id) = 'e2e-in-1@foreign.org'")" 1 \
	"stored once (two recipients, two deliver calls)"
EID=$(psqlc "SELECT id FROM emails WHERE trim(both '<>' from message_id) = 'e2e-in-1@foreign.org'")
ok '[ -n "$EID" ]' "its email id is known"
is "$(psqlc "SELECT string_agg(lower(address) || ':' || type || ':' || delivered || ':' || (user_id IS NOT NULL), ' ' ORDER BY address) FROM email_recipients WHERE email_id = '$EID'")" \
	"$A:to:true:true $B:bcc:true:true" "alice a linked To row, bob a linked Bcc row (only in the envelope), both delivered"
is "$(psqlc "SELECT from_address || '|' || from_display_name || '|' || subject || '|' || (sent_by_user_id IS NULL) FROM emails WHERE id = '$EID'")" \
	"carol@foreign.org|Carol|e2e inbound|true" "From, display name, Subject stored; no sent_by for inbound mail"
is "$(psqlc "SELECT string_agg(filename || ':' || content_type || ':' || (size_bytes > 0), ' ' ORDER BY position) FROM email_attachments WHERE email_id = '$EID'")" \
	"report.pdf:application/pdf:true inner.eml:message/rfc822:true" "the PDF and the attached message are stored as attachments"
is "$(psqlc "SELECT encode(sha256, 'hex') FROM email_attachments WHERE email_id = '$EID' AND filename = 'report.pdf'")" \
	"$(sha256sum <"$TAP_TMP/report.pdf" | cut -d' ' -f1)" "the PDF stored is the file, byte for byte (SHA-256)"
like "$(psqlc "SELECT convert_from(b.content, 'UTF8') FROM email_attachments a JOIN blobs b ON b.sha256 = a.sha256 WHERE a.email_id = '$EID' AND a.content_type = 'message/rfc822'")" \
	'Subject: forwarded inner' "the attached message is stored whole"
like "$(psqlc "SELECT convert_from(content, 'UTF8') FROM email_raw WHERE email_id = '$EID'")" 'hello alice' "the raw message is kept"
unlike "$(psqlc "SELECT convert_from(content, 'UTF8') FROM email_raw WHERE email_id = '$EID'")" '^Delivered-To:' \
	"no per-recipient delivery line in the stored raw message"

# the notification: postroom-webhookd POSTs MISSION's JSON from the outbox,
# one per event (a user's copy)
http_rec_wait 2 30
req=$(jq -c 'select(.body | contains("e2e inbound"))' "$HTTP_REC_OUT" | head -n 1)
ok '[ -n "$req" ]' "the HTTP listener received the new-email notification"
is "$(printf '%s' "$req" | jq -r '.method + " " + .path')" "POST $PIPELINE_NOTIFY_PATH" "POST /api/internal/notifications/new-email"
is "$(printf '%s' "$req" | jq -r '.headers.Authorization')" "ApiKey $PIPELINE_NOTIFY_KEY" "Authorization: ApiKey <internal key>"
body=$(printf '%s' "$req" | jq -r .body)
ALICE_ID=$(psqlc "SELECT id FROM users WHERE address = '$A'")
BOB_ID=$(psqlc "SELECT id FROM users WHERE address = '$B'")
is "$(printf '%s' "$body" | jq -c '[(.userIds | length), (.email | keys | sort)]')" \
	'[1,["from","fromDisplay","hasAttachments","id","receivedAt","subject"]]' \
	"JSON body: userIds and email {id, from, fromDisplay, subject, receivedAt, hasAttachments}"
is "$(printf '%s' "$body" | jq -r '[.email.id, .email.from, .email.fromDisplay, .email.subject, .email.hasAttachments] | map(tostring) | join("|")')" \
	"$EID|carol@foreign.org|Carol|e2e inbound|true" "the JSON names the stored email"
like "$(printf '%s' "$body" | jq -r '.email.receivedAt')" '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z$' "receivedAt is UTC ISO 8601"
users=$(jq -r 'select(.body | contains("e2e inbound")) | .body | fromjson | .userIds[]' "$HTTP_REC_OUT" | sort | tr '\n' ' ')
is "$users" "$(printf '%s\n' "$ALICE_ID" "$BOB_ID" | sort | tr '\n' ' ')" "the notifications name alice and bob (each delivery, its mailbox)"
sleep 1
is "$(jq -r 'select(.body | contains("e2e inbound")) | .body' "$HTTP_REC_OUT" | wc -l)" 2 \
	"exactly one notification per user: the pipe makes no request of its own, webhookd no duplicate"

# a reply from outside, threaded to the first message
r=$(smtp_reply DATA "$PF_PORT_MX" dave@foreign.org "$A" --header "From: dave@foreign.org" --header "To: $A" \
	--header "Subject: Re: e2e inbound" --header "Message-ID: <e2e-re-1@foreign.org>" \
	--header "In-Reply-To: <e2e-in-1@foreign.org>" --header "References: <e2e-in-1@foreign.org>" --body "a reply")
like "$r" '^250 ' "reply to alice: queued ($r)"
wait_count "SELECT count(*) FROM emails WHERE trim(both '<>' from message_id) = 'e2e-re-1@foreign.org'" 1
is "$(psqlc "SELECT thread_id FROM emails WHERE trim(both '<>' from message_id) = 'e2e-re-1@foreign.org'")" \
	"$(psqlc "SELECT thread_id FROM emails WHERE id = '$EID'")" "the reply is in the first message's thread"
is "$(psqlc "SELECT thread_id FROM emails WHERE id = '$EID'")" "$EID" "the thread's id is its first email's"

# sent mail: alice on 587 to bob and to a foreign address; stored once
# with sent_by, in bob's mailbox, the relayed copy stripped of X-Postroom-*
r=$(smtp_reply DATA "$PF_PORT_SUB" "$A" "$B,friend@foreign.org" "${TLS[@]}" "${AUTH[@]}" \
	--header "From: Alice <$A>" --header "Subject: e2e sent" --header "Message-ID: <e2e-sent-1@$D>" \
	--header "X-Postroom-Submission: v=1; user=$B; ts=1; sig=00" --body "from alice")
like "$r" '^250 ' "authenticated submission on 587: queued ($r)"
wait_count "SELECT count(*) FROM email_recipients r JOIN emails e ON e.id = r.email_id WHERE trim(both '<>' from e.message_id) = 'e2e-sent-1@$D' AND delivered" 1
pf_wait_log 'to=<sent@postroom.invalid>.*status=sent' 20
is "$(psqlc "SELECT count(*) FROM emails WHERE trim(both '<>' from message_id) = 'e2e-sent-1@$D'")" 1 "stored once (bob's copy and the sent copy)"
is "$(psqlc "SELECT sent_by_user_id FROM emails WHERE trim(both '<>' from message_id) = 'e2e-sent-1@$D'")" "$ALICE_ID" "sent_by = alice"
is "$(psqlc "SELECT string_agg(lower(address) || ':' || delivered, ' ' ORDER BY address) FROM email_recipients r JOIN emails e ON e.id = r.email_id WHERE trim(both '<>' from e.message_id) = 'e2e-sent-1@$D'")" \
	"$B:true friend@foreign.org:false" "in bob's mailbox; the foreign recipient a row, in no mailbox"
r=$(smtp_reply DATA "$PF_PORT_SUBS" "$A" friend@foreign.org "${TLSC[@]}" --auth LOGIN --auth-user "$A" --auth-password "$KEY" \
	--header "Subject: e2e sent 465" --header "Message-ID: <e2e-sent-2@$D>" --body "only outside")
like "$r" '^250 ' "authenticated submission on 465 (AUTH LOGIN) to a foreign address only: queued ($r)"
wait_count "SELECT count(*) FROM emails WHERE trim(both '<>' from message_id) = 'e2e-sent-2@$D' AND sent_by_user_id = '$ALICE_ID'" 1 &&
	pass "mail sent only to another site is stored too, with sent_by = alice" ||
	fail "mail sent only to another site is stored too, with sent_by = alice"
for i in $(seq 100); do grep -q '^Subject: e2e sent$' "$SINKDIR"/* 2>/dev/null && break; sleep 0.2; done
relayed=$(grep -l '^Subject: e2e sent$' "$SINKDIR"/* 2>/dev/null | head -n 1)
ok '[ -n "$relayed" ]' "the foreign recipient's copy was relayed"
ok '[ -n "$relayed" ] && ! grep -qi "^X-Postroom-" "$relayed"' "the relayed copy carries no X-Postroom-* header"

# ---- postmaster (RFC 5321 4.5.1, issue 17 item 6) -------------------------
diag "t=${SECONDS}s"
row mx  RCPT someone@foreign.org Postmaster '^250 ' "bare <Postmaster>: accept (was 501 5.1.3)"
ok 'grep -q "^ -> RCPT TO:<Postmaster>" "$TAP_TMP/swaks.out"' "... sent bare, as RCPT TO:<Postmaster>"
row mx  RCPT someone@foreign.org POSTMASTER '^250 ' "bare <POSTMASTER>: accept (any case)"
row mx  RCPT someone@foreign.org "postmaster@$D" '^250 ' "postmaster@ the hosted domain, no such user or alias: accept (was 550 5.1.1)"
row mx  RCPT someone@foreign.org postmaster@foreign.org '^554 5\.7\.1 .*Relay access denied' "postmaster@foreign.org: still a relay attempt"
row 587 RCPT someone@foreign.org Postmaster '^530 5\.7\.0 ' "bare <Postmaster> on submission, unauthenticated: unchanged (530)"
r=$(smtp_reply DATA "$PF_PORT_MX" reporter@foreign.org Postmaster --header "Subject: e2e postmaster bare" \
	--header "Message-ID: <e2e-pm-bare@foreign.org>" --body "abuse report to the bare postmaster")
like "$r" '^250 ' "a report to the bare <Postmaster>: queued ($r)"
r=$(smtp_reply DATA "$PF_PORT_MX" reporter@foreign.org "PostMaster@$D" --header "Subject: e2e postmaster domain" \
	--header "Message-ID: <e2e-pm-dom@foreign.org>" --body "abuse report to the domain's postmaster")
like "$r" '^250 ' "a report to PostMaster@$D: queued ($r)"
pm_rows() {	# the delivered recipient rows of a message: address:owner-is-bob
	psqlc "SELECT string_agg(lower(r.address) || ':' || (r.user_id = '$BOB_ID'), ' ' ORDER BY r.address) FROM email_recipients r JOIN emails e ON e.id = r.email_id WHERE trim(both '<>' from e.message_id) = '$1' AND r.delivered"
}
wait_count "SELECT count(*) FROM email_recipients r JOIN emails e ON e.id = r.email_id WHERE trim(both '<>' from e.message_id) = 'e2e-pm-bare@foreign.org' AND r.delivered" 1
is "$(pm_rows e2e-pm-bare@foreign.org)" "postmaster@$D:true" \
	"the bare <Postmaster> is stored as postmaster@$D (rules.postmaster_domain), in bob's mailbox (rules.postmaster_address)"
wait_count "SELECT count(*) FROM email_recipients r JOIN emails e ON e.id = r.email_id WHERE trim(both '<>' from e.message_id) = 'e2e-pm-dom@foreign.org' AND r.delivered" 1
is "$(pm_rows e2e-pm-dom@foreign.org)" "postmaster@$D:true" "PostMaster@$D is stored in bob's mailbox (rules.postmaster_address)"
ok 'grep -q "recipient <Postmaster> from .* delivered to <postmaster@$D>" "$PIPELINE_DIR/logs/milter.log"' \
	"the milter logs the replacement of the bare <Postmaster>"

# ---- sizes ---------------------------------------------------------------
diag "t=${SECONDS}s"
# SIZE= over message_size_limit at MAIL FROM, then 50 MB + 1 KB sent for real
# without SIZE=: refused at end of data, nothing queued
size_reply() {	# PORT SIZE|-  BYTES: the MAIL reply (SIZE given) or the DATA reply
	"$PL_PYTHON" - "$@" <<'PY'
import smtplib, sys
port, size, nbytes = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
s = smtplib.SMTP("127.0.0.1", port, timeout=120)
s.ehlo("client.example")
if size != "-":
    code, msg = s.mail("someone@foreign.org", ["SIZE=" + size])
    print(code, msg.decode()); sys.exit(0)
s.mail("someone@foreign.org")
s.rcpt(sys.argv[4])
line = b"x" * 76 + b"\r\n"
body = b"Subject: e2e big\r\n\r\n" + line * (nbytes // len(line) + 1)
code, msg = s.data(body)
print(code, msg.decode())
PY
}
like "$(size_reply "$PF_PORT_MX" 52428801 0)" '^552 5\.3\.4 ' "SIZE=52428801 at MAIL FROM: 552 5.3.4"
like "$(size_reply "$PF_PORT_MX" 52428800 0)" '^250 ' "SIZE=52428800 (the limit) at MAIL FROM: 250"
like "$(size_reply "$PF_PORT_MX" - 52429800 "$A")" '^552 5\.3\.4 ' "52,429,800 bytes without SIZE=: 552 5.3.4 at end of data"
is "$(psqlc "SELECT count(*) FROM emails WHERE subject = 'e2e big'")" 0 "nothing of it stored"

# ---- MX mode off: the rows of the tables that need it ----------------------
diag "t=${SECONDS}s"
sed -i 's/mx_enabled = true;/mx_enabled = false;/' "$PIPELINE_CONF"
pipeline_daemon_kill milter && pipeline_daemon_kill policyd &&
	pipeline_daemon_start milter && pipeline_daemon_start policyd &&
	pass "milter and policyd restarted with MX mode off" || fail "milter and policyd restarted with MX mode off"
row mx  MAIL someone@foreign.org "$A" '^530 5\.7\.0 Authentication required$' "MX off, MX port, unauthenticated sender: reject"
row 587 MAIL "$A" friend@foreign.org '^250 ' "MX off, submission, authenticated sender: accept" "${AUTH[@]}"
row 465 RCPT "$A" friend@foreign.org '^250 ' "MX off, submissions, authenticated recipient: accept to anyone" "${AUTH[@]}"
row 587 RCPT "$A" "$B" '^250 ' "MX off, submission, authenticated, hosted recipient: accept" "${AUTH[@]}"
row 465 MAIL someone@foreign.org "$A" '^530 5\.7\.0 ' "MX off, submissions, unauthenticated: reject"
sed -i 's/mx_enabled = false;/mx_enabled = true;/' "$PIPELINE_CONF"

ok '! grep -Eq "Sanitizer|runtime error:" "$PIPELINE_DIR"/logs/*.log' "no sanitizer report from any daemon"

# ---- pipeline_stop from a fresh shell, given only the directory (tools/demo)
pids=$(cat "$PIPELINE_DIR"/pids/*.pid | tr '\n' ' ')
is "$(ls "$PIPELINE_DIR/pids" | tr '\n' ' ')" "authd.pid httprec.pid milter.pid policyd.pid postfix.pid postgres.pid webhookd.pid " \
	"a pid file for every process of the pipeline"
env -i PATH="$PATH" POSTROOM_SRCDIR="$POSTROOM_SRCDIR" POSTROOM_BUILDDIR="$POSTROOM_BUILDDIR" bash -c \
	'. "$POSTROOM_SRCDIR/tests/lib/tap.sh"; . "$POSTROOM_SRCDIR/tests/lib/pg.sh"
	 . "$POSTROOM_SRCDIR/tests/lib/pipeline.sh"; pipeline_stop "$1"' - "$PIPELINE_DIR"
for i in $(seq 50); do	# a process ends a moment after its pid file goes
	left=
	for p in $pids; do
		ps -o stat= -p "$p" 2>/dev/null | grep -qv Z && left="$left $p"
	done
	[ -z "$left" ] && break
	sleep 0.1
done
is "$left" "" "pipeline_stop DIR in a fresh shell ends every daemon, Postfix and PostgreSQL ($pids)"
is "$(ps -eo sid= | awk -v s="$PF_MASTER_PID" '$1 == s' | wc -l)" 0 "no process of the Postfix instance is left"
done_testing
