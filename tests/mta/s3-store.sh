#!/usr/bin/env bash
# s3-store.sh - the storing path with blobs.backend = s3 against a real
# object store (Ceph's RADOS Gateway, tests/lib/s3.bash) and a real Postfix:
# mail with an attachment above blobs.min_size and one below it, delivered
# by Postfix over LMTP to postroom-lmtpd and through pipe(8) to
# postroom-deliver (each as its own database role): the large one is a
# blobs row with location 's3' and its object is in the bucket, the small
# one stays in PostgreSQL; `postroomctl mail raw` gives the message back
# byte for byte (the sent file, after the trace headers Postfix and the
# delivery put on top), `mail attachment` each attachment;
# postroom_email_raw refuses with PR103 and postroom_email_raw_parts (run
# as the application's role) gives pieces that an independent reassembly
# here (python3) turns into the same bytes. Faults: an object overwritten
# in the bucket makes `mail raw` fail on its SHA-256; radosgw stopped makes
# LMTP answer 451 4.3.0 and deliver exit 75 within blobs.timeout (bounds
# with slack: the machine is shared), nothing stored, Postfix keeps both
# messages queued, and once radosgw is back each arrives exactly once; a
# wrong secret key and a missing bucket defer 4.3.5 with a loud log line;
# blobs.timeout not below deliver.timeout is refused. A blob already in the
# bucket is not uploaded again, one already in PostgreSQL stays there, and
# mail compact-raw converts a whole message whose blob is in the bucket.
# A slow object store (a proxy holding PUT answers) delays only the
# message uploading: another LMTP session's message is answered at once;
# messages uploaded before their transaction join lmtpd's group commit.
. "$(dirname "$0")/../lib/tap.sh"
. "$POSTROOM_SRCDIR/tests/lib/pg.sh"
. "$POSTROOM_SRCDIR/tests/lib/ports.sh"
. "$POSTROOM_SRCDIR/tests/lib/postfix.sh"
. "$POSTROOM_SRCDIR/tests/lib/s3.bash"
. "$POSTROOM_SRCDIR/tests/integration/lmtpd-helpers.bash"
PY=$(command -v /usr/bin/python3 || command -v python3)
BUCKET=postroom-mail
t0=$(date +%s)

pg_start && pg_fresh_db s3store || { fail "database ready"; done_testing; }
pg_login_roles
pctl domain add example.com >/dev/null && pctl domain add pipe.example >/dev/null
pctl user add alice@example.com >/dev/null && pctl user add bob@pipe.example >/dev/null
s3_start || { fail "radosgw started"; done_testing; }
s3_bucket_create "$BUCKET" || { fail "bucket $BUCKET created"; done_testing; }
pass "PostgreSQL and radosgw started, bucket created ($(($(date +%s) - t0)) s)"

# postroom-deliver runs as RUNUSER and reads a credentials file of its own
# (owner RUNUSER, 0600); postroomctl and postroom-lmtpd (which reads its
# configuration as root, before it drops to lmtpd.user) one owned by root
RUNUSER=${PG_RUNAS:-$(id -un)}
chmod 711 "$TAP_TMP"
s3_credentials_file "$TAP_TMP/s3-root.cred"
s3_credentials_file "$TAP_TMP/s3-run.cred"
chown "$RUNUSER" "$TAP_TMP/s3-run.cred" && chmod 600 "$TAP_TMP/s3-run.cred"
blobs_section() { # CREDFILE [BUCKET]
	printf 'blobs = { backend = "s3"; endpoint = "%s"; region = "%s"; bucket = "%s";' \
		"$S3_ENDPOINT" "$S3_REGION" "${2:-$BUCKET}"
	printf ' credentials_file = "%s"; timeout = 3; min_size = 65536; };\n' "$1"
}
blobs_section "$TAP_TMP/s3-root.cred" >>"$POSTROOM_CONF"
BASE_CONF=$TAP_TMP/base.conf
grep -v '^blobs = ' "$POSTROOM_CONF" >"$BASE_CONF"
# deliver's configuration: DCONF_NAME CREDFILE [BUCKET]
deliver_conf() {
	{
		cat "$BASE_CONF"
		blobs_section "$2" "${3:-$BUCKET}"
		echo "deliver = { conninfo = \"$(pg_role_conninfo deliver)\"; timeout = 60; };"
	} >"$TAP_TMP/$1"
	chown "$RUNUSER" "$TAP_TMP/$1" && chmod 600 "$TAP_TMP/$1"
}
deliver_conf deliver.conf "$TAP_TMP/s3-run.cred"
DCONF=$TAP_TMP/deliver.conf

POSTROOM_CONF_SAVED=$POSTROOM_CONF
POSTROOM_CONF=$BASE_CONF
LMTPD_TOP=$(blobs_section "$TAP_TMP/s3-root.cred")
LMTPD_EXTRA="conninfo = \"$(pg_role_conninfo lmtpd)\";"
lmtpd_start || { fail "postroom-lmtpd starts"; done_testing; }
POSTROOM_CONF=$POSTROOM_CONF_SAVED

PF_MAIN_EXTRA=(
	"virtual_mailbox_domains = example.com pipe.example"
	"virtual_mailbox_maps = static:postroom"
	"virtual_transport = lmtp:unix:$LMTPD_SOCKET"
	"transport_maps = inline:{pipe.example=postroom:}"
	"postroom_destination_recipient_limit = 1"
	"lmtp_send_xforward_command = yes"
	"maximal_backoff_time = 2s"
	"minimal_backoff_time = 1s"
	"queue_run_delay = 1s"
)
PF_MASTER_EXTRA=("postroom unix - n n - - pipe flags=Rq user=$RUNUSER argv=$POSTROOM_BUILDDIR/postroom-deliver -c $DCONF -f \${sender} -- \${recipient}")
pf_start || { fail "Postfix starts"; done_testing; }
pass "Postfix (LMTP to postroom-lmtpd, pipe to postroom-deliver) and postroom-lmtpd start"

# mkmsg NAME [BIG] - a message with a 200 KB attachment (base64 lines of
# 76, CRLF) and a 1 KB one, each of fresh random bytes (the large one the
# bytes of the file BIG when given): $TAP_TMP/NAME.eml, NAME.big and
# NAME.small
mkmsg() {
	"$PY" - "$TAP_TMP/$1" "$1" "${2:-}" <<'PY'
import base64, os, sys
base, name = sys.argv[1], sys.argv[2]
big = open(sys.argv[3], "rb").read() if sys.argv[3] else os.urandom(200 * 1024)
small = os.urandom(1024)
open(base + ".big", "wb").write(big)
open(base + ".small", "wb").write(small)
def b64(b):
    s = base64.b64encode(b).decode()
    return "\r\n".join(s[i:i + 76] for i in range(0, len(s), 76))
msg = ("From: sender@foreign.example\r\nTo: rcpt@example.com\r\nSubject: s3 %s\r\n"
       "Message-ID: <%s@foreign.example>\r\nDate: Sat, 05 Dec 2026 12:00:00 +0000\r\n"
       "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n"
       "--b1\r\nContent-Type: text/plain\r\n\r\nhello %s\r\n"
       "--b1\r\nContent-Type: application/octet-stream\r\n"
       "Content-Disposition: attachment; filename=\"big.bin\"\r\n"
       "Content-Transfer-Encoding: base64\r\n\r\n%s\r\n"
       "--b1\r\nContent-Type: application/octet-stream\r\n"
       "Content-Disposition: attachment; filename=\"small.bin\"\r\n"
       "Content-Transfer-Encoding: base64\r\n\r\n%s\r\n--b1--\r\n"
       % (name, name, name, b64(big), b64(small)))
open(base + ".eml", "wb").write(msg.encode())
PY
}
# send NAME RCPT - through Postfix's MX port; prints the queue id
send() {
	"$PY" - "$PF_PORT_MX" "$2" "$TAP_TMP/$1.eml" <<'PY'
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=60)
r = s.sendmail("sender@foreign.example", [sys.argv[2]], open(sys.argv[3], "rb").read())
code, text = s.noop()
s.quit()
PY
	grep "from=<sender@foreign.example>" "$PF_LOG" | tail -n 1 | sed -n 's/.*postfix[^ ]* \([0-9A-F]*\): from=.*/\1/p'
}
email_of() { psqlc "SELECT id FROM emails WHERE message_id = '$1@foreign.example'"; }
sha() { sha256sum "$1" | cut -c1-64; }
key_of() { local h; h=$(sha "$1"); echo "${h:0:2}/${h:2:2}/$h"; }
wait_email() { # NAME [SECONDS]
	local i
	for i in $(seq $((${2:-30} * 5))); do
		[ -n "$(email_of "$1")" ] && return 0
		sleep 0.2
	done
	return 1
}

# check_stored NAME PATH: every check of one message stored through PATH
# (pipe(8) hands the message over with LF line ends: what is stored then
# is the sent file with LF)
check_stored() {
	local n=$1 via=$2 id big small raw sent=$TAP_TMP/$1.eml
	if [ "$via" = pipe ]; then
		sed 's/\r$//' "$sent" >"$TAP_TMP/$n.lf"
		sent=$TAP_TMP/$n.lf
	fi
	id=$(email_of "$n")
	ok "[ -n '$id' ]" "$via: the message is stored ($id)"
	big=$(sha "$TAP_TMP/$n.big") small=$(sha "$TAP_TMP/$n.small")
	is "$(psqlc "SELECT location || ':' || (content IS NULL) FROM blobs WHERE sha256 = decode('$big', 'hex')")" \
		"s3:true" "$via: the 200 KB attachment is a blobs row with location 's3' and no content"
	is "$(psqlc "SELECT location || ':' || octet_length(content) FROM blobs WHERE sha256 = decode('$small', 'hex')")" \
		"postgresql:1024" "$via: the 1 KB attachment (below blobs.min_size) stays in PostgreSQL"
	s3_curl -o "$TAP_TMP/$n.obj" "$S3_ENDPOINT/$BUCKET/$(key_of "$TAP_TMP/$n.big")"
	cmp -s "$TAP_TMP/$n.obj" "$TAP_TMP/$n.big" && pass "$via: its object is in the bucket under ab/cd/SHA256, byte-exact" ||
		fail "$via: its object is in the bucket under ab/cd/SHA256, byte-exact"
	is "$(psqlc "SELECT layout FROM email_raw_base WHERE email_id = '$id'")" 1 \
		"$via: the raw message is a skeleton with references (the s3 blob cut out too)"
	pctl mail raw "$id" >"$TAP_TMP/$n.raw" 2>"$TAP_TMP/$n.err"
	is "$?" 0 "$via: mail raw succeeds" || diag "$(cat "$TAP_TMP/$n.err")"
	raw=$(stat -c %s "$sent")
	tail -c "$raw" "$TAP_TMP/$n.raw" | cmp -s - "$sent" &&
		pass "$via: mail raw is the sent file byte for byte (after the trace headers on top)" ||
		fail "$via: mail raw is the sent file byte for byte (after the trace headers on top)"
	head -c 400 "$TAP_TMP/$n.raw" | grep -q '^Received: from ' &&
		pass "$via: ... and those are the trace headers" || fail "$via: ... and those are the trace headers"
	pctl mail attachment "$id" 1 | cmp -s - "$TAP_TMP/$n.big" &&
		pass "$via: mail attachment 1 (from the object store) byte-exact" ||
		fail "$via: mail attachment 1 (from the object store) byte-exact"
	pctl mail attachment "$id" 2 | cmp -s - "$TAP_TMP/$n.small" &&
		pass "$via: mail attachment 2 (from PostgreSQL) byte-exact" ||
		fail "$via: mail attachment 2 (from PostgreSQL) byte-exact"
	like "$("$PG_BINDIR/psql" -qXAt "$(pg_role_conninfo app)" -v VERBOSITY=verbose \
		-c "SELECT postroom_email_raw('$id')" 2>&1)" "PR103.*use postroom_email_raw_parts" \
		"$via: postroom_email_raw refuses with PR103 (the bytes are not all in the database)"
	# an independent reassembly of postroom_email_raw_parts, as the application
	"$PG_BINDIR/psql" -qXAt -F ' ' "$(pg_role_conninfo app)" -c \
		"SELECT ordinal, COALESCE(encode(content, 'hex'), '-'), COALESCE(object_key, '-'),
		        COALESCE(line_len, 0), COALESCE(crlf, false) FROM postroom_email_raw_parts('$id') ORDER BY ordinal" \
		>"$TAP_TMP/$n.parts"
	awk '$3 != "-" { print $3 }' "$TAP_TMP/$n.parts" | while read -r k; do
		mkdir -p "$TAP_TMP/objs/$(dirname "$k")"
		s3_curl -o "$TAP_TMP/objs/$k" "$S3_ENDPOINT/$BUCKET/$k"
	done
	"$PY" - "$TAP_TMP/$n.parts" "$TAP_TMP/objs" >"$TAP_TMP/$n.rebuilt" <<'PY'
import base64, sys
out = sys.stdout.buffer
for line in open(sys.argv[1]):
    ordinal, content, key, line_len, crlf = line.split()
    data = bytes.fromhex(content) if content != "-" else None
    if int(line_len) == 0:
        out.write(data)
        continue
    if data is None:
        data = open(sys.argv[2] + "/" + key, "rb").read()
    enc = base64.b64encode(data)
    n = int(line_len)
    out.write((b"\r\n" if crlf == "t" else b"\n").join(enc[i:i + n] for i in range(0, len(enc), n)))
PY
	cmp -s "$TAP_TMP/$n.rebuilt" "$TAP_TMP/$n.raw" &&
		pass "$via: postroom_email_raw_parts reassembled here (python3, object from the bucket) = mail raw" ||
		fail "$via: postroom_email_raw_parts reassembled here (python3, object from the bucket) = mail raw"
	like "$(awk '$3 != "-"' "$TAP_TMP/$n.parts" | wc -l)" '^1$' "$via: one part of it names an object"
}

# ---- stored through LMTP and through the pipe ------------------------------
mkmsg m-lmtp && mkmsg m-pipe
send m-lmtp alice@example.com >/dev/null
send m-pipe bob@pipe.example >/dev/null
wait_email m-lmtp 30 && wait_email m-pipe 30 || diag "$(tail -n 20 "$PF_LOG")"
like "$(grep 'relay=.*status=sent' "$PF_LOG" | grep -c 'alice@example.com')" '^1$' "Postfix: sent to alice over LMTP"
like "$(grep 'relay=postroom.*status=sent' "$PF_LOG" | grep -c 'bob@pipe.example')" '^1$' "Postfix: sent to bob through pipe(8)"
check_stored m-lmtp LMTP
check_stored m-pipe pipe

# ---- an object altered in the bucket: mail raw fails on its SHA-256 --------
id=$(email_of m-lmtp)
head -c 2000 /dev/urandom >"$TAP_TMP/evil"
code=$(curl -s -o /dev/null -w '%{http_code}' --aws-sigv4 "aws:amz:$S3_REGION:s3" \
	--user "$S3_ACCESS_KEY:$S3_SECRET_KEY" -H "x-amz-content-sha256: $(sha "$TAP_TMP/evil")" \
	-T "$TAP_TMP/evil" "$S3_ENDPOINT/$BUCKET/$(key_of "$TAP_TMP/m-lmtp.big")")
is "$code" 200 "other bytes written under the object's key behind postroom's back"
pctl mail raw "$id" >"$TAP_TMP/bad.raw" 2>"$TAP_TMP/bad.err"
ok "[ $? -ne 0 ]" "mail raw of that message fails"
like "$(cat "$TAP_TMP/bad.err")" "SHA-256" "... saying the object does not match its SHA-256"
is "$(stat -c %s "$TAP_TMP/bad.raw")" 0 "... and writes nothing"
pctl mail attachment "$id" 1 >"$TAP_TMP/bad.att" 2>"$TAP_TMP/bad.err"
ok "[ $? -ne 0 ] && [ ! -s '$TAP_TMP/bad.att' ]" "mail attachment of it fails too, writing nothing"

# ---- radosgw stopped: defer 4.3.0, nothing stored, queued; then once ------
before=$(psqlc "SELECT count(*) FROM emails")/$(psqlc "SELECT count(*) FROM blobs")/$(psqlc "SELECT count(*) FROM events")
s3_rgw_stop
mkmsg m-down-lmtp && mkmsg m-down-pipe && mkmsg m-down-direct
# deliver directly, timed (blobs.timeout = 3 s; bound 3 x it: load)
s=$(date +%s)
out=$(runuser -u "$RUNUSER" -- "$POSTROOM_BUILDDIR/postroom-deliver" -c "$DCONF" \
	-f sender@foreign.example -- bob@pipe.example <"$TAP_TMP/m-down-direct.eml" 2>"$TAP_TMP/direct.err")
rc=$? secs=$(($(date +%s) - s))
is "$rc" 75 "radosgw stopped: postroom-deliver exits 75 (EX_TEMPFAIL)"
like "$out" '^4\.3\.0 ' "... with 4.3.0 ($out)"
ok "[ $secs -le 9 ]" "... within blobs.timeout (took $secs s; bound 9 s)"
send m-down-lmtp alice@example.com >/dev/null
send m-down-pipe bob@pipe.example >/dev/null
pf_wait_log "alice@example.com.*status=deferred.*4\.3\.0" 30
pf_wait_log "bob@pipe.example.*dsn=4\.3\.0, status=deferred" 30
like "$(grep 'alice@example.com.*status=deferred' "$PF_LOG" | tail -n 1)" "451 4\.3\.0 .*object store unavailable" \
	"radosgw stopped: LMTP answers 451 4.3.0"
like "$(grep 'bob@pipe.example.*status=deferred' "$PF_LOG" | tail -n 1)" "dsn=4\.3\.0, status=deferred \(object store unavailable" \
	"radosgw stopped: the pipe defers with 4.3.0"
is "$(psqlc "SELECT count(*) FROM emails")/$(psqlc "SELECT count(*) FROM blobs")/$(psqlc "SELECT count(*) FROM events")" \
	"$before" "nothing stored: no email, blob or event row"
is "$(pf_queue_ids | wc -l)" 2 \
	"Postfix keeps both messages queued"
# radosgw back (the same cluster, objects kept)
radosgw -c "$S3_DIR/ceph.conf" -n client.rgw >>"$S3_DIR/log/restart.out" 2>&1
for i in $(seq 300); do
	curl -s -o /dev/null --max-time 2 "$S3_ENDPOINT/" && break
	sleep 0.1
done
postqueue -c "$PF_CONF" -f
wait_email m-down-lmtp 60 && wait_email m-down-pipe 60
for i in $(seq 150); do pf_queue_empty && break; sleep 0.2; done
is "$(psqlc "SELECT count(*) FROM emails WHERE message_id IN ('m-down-lmtp@foreign.example', 'm-down-pipe@foreign.example')")" 2 \
	"radosgw back: both queued messages arrive"
is "$(psqlc "SELECT count(*) FROM email_recipients r JOIN emails e ON e.id = r.email_id WHERE e.message_id LIKE 'm-down-%' AND r.delivered")" 2 \
	"... exactly once each"
ok pf_queue_empty "... and the queue is empty"
check_stored m-down-lmtp "LMTP after the outage"

# ---- a blob stored already: in the bucket (not uploaded again), in PostgreSQL (stays) --
# m-again: the large attachment of m-pipe again (its row says s3)
mkmsg m-again "$TAP_TMP/m-pipe.big"
s3_curl -D "$TAP_TMP/h1" -o /dev/null "$S3_ENDPOINT/$BUCKET/$(key_of "$TAP_TMP/m-pipe.big")"
sleep 1.1 # LastModified has whole seconds
runuser -u "$RUNUSER" -- "$POSTROOM_BUILDDIR/postroom-deliver" -c "$DCONF" \
	-f sender@foreign.example -- bob@pipe.example <"$TAP_TMP/m-again.eml" >/dev/null 2>&1
is "$?" 0 "the same large attachment in another message: stored"
s3_curl -D "$TAP_TMP/h2" -o /dev/null "$S3_ENDPOINT/$BUCKET/$(key_of "$TAP_TMP/m-pipe.big")"
is "$(grep -i '^last-modified' "$TAP_TMP/h2")" "$(grep -i '^last-modified' "$TAP_TMP/h1")" \
	"... its object was not uploaded again (a row names it: LastModified unchanged)"
pctl mail attachment "$(email_of m-again)" 1 | cmp -s - "$TAP_TMP/m-pipe.big" &&
	pass "... and reads back byte-exact" || fail "... and reads back byte-exact"
# m-pg: stored with the PostgreSQL backend first, then the same attachment with s3
mkmsg m-pg && mkmsg m-pg2 "$TAP_TMP/m-pg.big"
grep -v '^blobs = ' "$DCONF" >"$TAP_TMP/pg.conf" && chown "$RUNUSER" "$TAP_TMP/pg.conf"
runuser -u "$RUNUSER" -- "$POSTROOM_BUILDDIR/postroom-deliver" -c "$TAP_TMP/pg.conf" \
	-f sender@foreign.example -- bob@pipe.example <"$TAP_TMP/m-pg.eml" >/dev/null 2>&1
runuser -u "$RUNUSER" -- "$POSTROOM_BUILDDIR/postroom-deliver" -c "$DCONF" \
	-f sender@foreign.example -- bob@pipe.example <"$TAP_TMP/m-pg2.eml" >/dev/null 2>&1
is "$(psqlc "SELECT location FROM blobs WHERE sha256 = decode('$(sha "$TAP_TMP/m-pg.big")', 'hex')")" \
	postgresql "a large blob stored in PostgreSQL before stays there when mail with it comes with s3"
is "$(s3_curl -o /dev/null -w '%{http_code}' "$S3_ENDPOINT/$BUCKET/$(key_of "$TAP_TMP/m-pg.big")")" 404 \
	"... and is not uploaded"
pctl mail raw "$(email_of m-pg2)" | tail -c "$(stat -c %s "$TAP_TMP/m-pg2.eml")" |
	cmp -s - "$TAP_TMP/m-pg2.eml" && pass "... and the message reads back byte-exact" ||
	fail "... and the message reads back byte-exact"

# ---- compact-raw: mail stored whole whose blob is in the bucket ------------
# (stored before migration 025, its blobs moved by blobs migrate since):
# postroom_email_raw cannot check it (PR103); the C rebuild, reading the
# object, does
id=$(email_of m-pipe)
{
	echo "BEGIN; DELETE FROM email_raw_refs WHERE email_id = '$id';"
	printf "UPDATE email_raw_base SET layout = 0, content = decode('%s', 'hex') WHERE email_id = '%s';\nCOMMIT;\n" \
		"$(od -An -v -tx1 "$TAP_TMP/m-pipe.raw" | tr -d ' \n')" "$id"
} >"$TAP_TMP/whole.sql"
"$PG_BINDIR/psql" -qXAt -v ON_ERROR_STOP=1 -d "$POSTROOM_DB" -f "$TAP_TMP/whole.sql" >/dev/null
is "$(psqlc "SELECT layout FROM email_raw_base WHERE email_id = '$id'")" 0 "m-pipe put back whole (layout 0)"
out=$(pctl mail compact-raw 2>&1)
like "$out" "1 compacted" "mail compact-raw compacts it ($out)"
unlike "$out" "PR103|object store" "... without an error"
pctl mail raw "$id" | cmp -s - "$TAP_TMP/m-pipe.raw" && pass "... and it reads back byte-exact" ||
	fail "... and it reads back byte-exact"

# ---- blobs gc between an upload and its commit: uploaded again -----------
# The store is held after its upload and before its first row (a
# transaction holds emails ACCESS EXCLUSIVE; gc reads only blobs and
# blob_objects_freed); gc --grace 0 then finds the new object without a
# row and deletes it. After COMMIT the store looks for each object it
# uploaded and uploads it again: the row never names a missing object.
mkmsg m-race
rkey=$(key_of "$TAP_TMP/m-race.big")
coproc LOCKER { "$PG_BINDIR/psql" -qXAt -d "$POSTROOM_DB" >/dev/null 2>&1; }
echo "BEGIN; LOCK TABLE emails IN ACCESS EXCLUSIVE MODE;" >&"${LOCKER[1]}"
for _ in $(seq 100); do
	[ "$(psqlc "SELECT count(*) FROM pg_locks WHERE relation = 'emails'::regclass AND mode = 'AccessExclusiveLock' AND granted")" = 1 ] && break
	sleep 0.1
done
runuser -u "$RUNUSER" -- "$POSTROOM_BUILDDIR/postroom-deliver" -c "$DCONF" -v \
	-f sender@foreign.example -- bob@pipe.example <"$TAP_TMP/m-race.eml" >"$TAP_TMP/race.out" 2>&1 &
rpid=$!
code=404
for _ in $(seq 200); do
	code=$(s3_curl -o /dev/null -w '%{http_code}' "$S3_ENDPOINT/$BUCKET/$rkey")
	[ "$code" = 200 ] && break
	sleep 0.1
done
is "$code" 200 "race: the store uploaded its object and waits before its rows"
sleep 1.1 # LastModified has whole seconds: gc --grace 0 takes it as older
pctl blobs gc --grace 0 >"$TAP_TMP/race-gc.out" 2>&1
is "$(s3_curl -o /dev/null -w '%{http_code}' "$S3_ENDPOINT/$BUCKET/$rkey")" 404 \
	"... blobs gc --grace 0 deleted it (no row yet)" || diag "$(cat "$TAP_TMP/race-gc.out")"
echo "COMMIT;" >&"${LOCKER[1]}"
exec {LOCKER[1]}>&-
wait "$rpid"
is "$?" 0 "... the store commits (exit 0)" || diag "$(cat "$TAP_TMP/race.out")"
wait "$LOCKER_PID" 2>/dev/null
is "$(psqlc "SELECT location FROM blobs WHERE sha256 = decode('$(sha "$TAP_TMP/m-race.big")', 'hex')")" s3 \
	"... its row names the object"
is "$(s3_curl -o /dev/null -w '%{http_code}' "$S3_ENDPOINT/$BUCKET/$rkey")" 200 \
	"... and the object is there again: uploaded again after the commit"
like "$(cat "$TAP_TMP/race.out")" "deleted by blobs gc before the commit: uploaded again" \
	"... with a log line saying so"
pctl mail attachment "$(email_of m-race)" 1 | cmp -s - "$TAP_TMP/m-race.big" &&
	pass "... and the attachment reads back byte-exact" ||
	fail "... and the attachment reads back byte-exact"

# ---- operator mistakes: 4.3.5 with a loud log line -------------------------
printf 'aws_access_key_id = %s\naws_secret_access_key = wrong%s\n' "$S3_ACCESS_KEY" "$S3_SECRET_KEY" \
	>"$TAP_TMP/wrong.cred"
cp "$TAP_TMP/wrong.cred" "$TAP_TMP/wrong-root.cred" && chmod 600 "$TAP_TMP/wrong-root.cred"
chown "$RUNUSER" "$TAP_TMP/wrong.cred" && chmod 600 "$TAP_TMP/wrong.cred"
deliver_conf wrong.conf "$TAP_TMP/wrong.cred"
deliver_conf nobucket.conf "$TAP_TMP/s3-run.cred" postroom-missing
mkmsg m-wrong
n0=$(psqlc "SELECT count(*) FROM emails")
for c in wrong nobucket; do
	out=$(runuser -u "$RUNUSER" -- "$POSTROOM_BUILDDIR/postroom-deliver" -c "$TAP_TMP/$c.conf" -v \
		-f sender@foreign.example -- bob@pipe.example <"$TAP_TMP/m-wrong.eml" 2>"$TAP_TMP/$c.err")
	rc=$?
	is "$rc" 75 "$c: postroom-deliver exits 75 (never a bounce)"
	like "$out" '^4\.3\.5 ' "$c: ... with 4.3.5 ($out)"
done
like "$(cat "$TAP_TMP/wrong.err")" "CONFIGURATION ERROR.*403 SignatureDoesNotMatch" "wrong secret key: a loud log line"
like "$(cat "$TAP_TMP/nobucket.err")" "CONFIGURATION ERROR.*NoSuchBucket" "missing bucket: a loud log line"
unlike "$(cat "$TAP_TMP/wrong.err")" "$S3_SECRET_KEY" "no key in the log"
# the same through postroom-lmtpd, restarted with the wrong key
lmtpd_stop "$LMTPD_PID"
POSTROOM_CONF=$BASE_CONF LMTPD_TOP=$(blobs_section "$TAP_TMP/wrong-root.cred") lmtpd_start "$TAP_TMP/lmtpd-wrong" ||
	fail "postroom-lmtpd starts with the wrong key"
out=$(printf 'S LHLO t\nR\nS MAIL FROM:<sender@foreign.example>\nR\nS RCPT TO:<alice@example.com>\nR\nS DATA\nR\nF %s\nS .\nR\nS QUIT\n' \
	"$TAP_TMP/m-wrong.eml" >"$TAP_TMP/wrong.script" && lmtp "$LMTPD_SOCKET" "$TAP_TMP/wrong.script")
like "$out" "451 4\.3\.5 <alice@example.com>" "wrong secret key: LMTP answers 451 4.3.5"
like "$(cat "$LMTPD_LOG")" "CONFIGURATION ERROR.*SignatureDoesNotMatch" "... with a loud log line"
is "$(psqlc "SELECT count(*) FROM emails")" "$n0" "nothing stored by the misconfigured deliveries"

# blobs.timeout must stay below deliver.timeout (pipe(8) kills deliver)
{ cat "$BASE_CONF"; blobs_section "$TAP_TMP/s3-root.cred" | sed 's/timeout = 3;/timeout = 400;/'; } >"$TAP_TMP/slow.conf"
out=$("$POSTROOM_BUILDDIR/postroom-lmtpd" -t -c "$TAP_TMP/slow.conf" 2>&1)
rc=$?
ok "[ $rc -ne 0 ]" "postroom-lmtpd -t refuses blobs.timeout 400 >= deliver.timeout 300 (exit $rc)"
like "$out" "blobs.timeout \(400 s\) must be below deliver.timeout \(300 s\)" "... saying why"
out=$("$POSTROOM_BUILDDIR/postroom-deliver" -c "$TAP_TMP/slow.conf" -f sender@foreign.example \
	-- bob@pipe.example <"$TAP_TMP/m-wrong.eml" 2>/dev/null)
is "$?/${out:0:6}" "75/4.3.5 " "postroom-deliver defers such a configuration with 4.3.5"


# ---- a slow object store holds back only the message uploading ----------
# A proxy in front of radosgw holds the answer to every PUT for SLOW
# seconds (not down: blobs.timeout is longer). postroom-lmtpd with one
# pool connection (lmtpd.pool_size = 1: one group leader). While session
# A's message waits for its upload, session B's message without
# attachments is answered 250 well within SLOW (bound SLOW / 2: slack for
# load): the upload runs in A's session thread, before the group, which
# only runs transactions. Before, the upload ran in the group's leader, and
# B waited for it (SLOW s).
SLOW=6
"$PY" - "$TAP_TMP/proxy.port" "${S3_ENDPOINT##*:}" "$SLOW" "$TAP_TMP/proxy.puts" <<'PY' &
import socket, sys, threading, time
port_file, up_port, delay, marks = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", 0))
srv.listen(64)
open(port_file + ".tmp", "w").write(str(srv.getsockname()[1]))
__import__("os").rename(port_file + ".tmp", port_file)
def pump(a, b, st, up):
    try:
        while True:
            d = a.recv(65536)
            if not d:
                break
            if not up and "put" not in st:
                st["put"] = d.startswith(b"PUT ")
                if st["put"]:
                    open(marks, "a").write("PUT\n")
            if up and st.get("put") and not st.get("slept"):
                time.sleep(delay)
                st["slept"] = True
            b.sendall(d)
    except OSError:
        pass
    for s in (b,):
        try:
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass
def serve(c):
    u = socket.create_connection(("127.0.0.1", up_port))
    st = {}
    threading.Thread(target=pump, args=(c, u, st, False), daemon=True).start()
    threading.Thread(target=pump, args=(u, c, st, True), daemon=True).start()
while True:
    c, _ = srv.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
PY
proxy_pid=$!
for _ in $(seq 100); do [ -s "$TAP_TMP/proxy.port" ] && break; sleep 0.1; done
lmtpd_stop "$LMTPD_PID"
POSTROOM_CONF=$BASE_CONF LMTPD_EXTRA="$LMTPD_EXTRA pool_size = 1;" \
	LMTPD_TOP=$(blobs_section "$TAP_TMP/s3-root.cred" |
		sed "s|$S3_ENDPOINT|http://127.0.0.1:$(cat "$TAP_TMP/proxy.port")|; s/timeout = 3;/timeout = 30;/") \
	lmtpd_start "$TAP_TMP/lmtpd-slow" || fail "postroom-lmtpd starts behind the slow proxy"
mkmsg m-slow
printf 'From: sender@foreign.example\r\nTo: alice@example.com\r\nSubject: plain\r\nMessage-ID: <m-plain@foreign.example>\r\n\r\nno attachment\r\n' \
	>"$TAP_TMP/m-plain.eml"
lscript() { # NAME RCPT
	printf 'S LHLO t\nR\nS MAIL FROM:<sender@foreign.example>\nR\nS RCPT TO:<%s>\nR\nS DATA\nR\nF %s\nS .\nR\nS QUIT\n' \
		"$2" "$TAP_TMP/$1.eml" >"$TAP_TMP/$1.script"
}
lscript m-slow alice@example.com && lscript m-plain alice@example.com
s=$(date +%s%N)
LMTP_TIMEOUT=60 lmtp "$LMTPD_SOCKET" "$TAP_TMP/m-slow.script" >"$TAP_TMP/m-slow.out" 2>&1 &
apid=$!
for _ in $(seq 300); do [ -s "$TAP_TMP/proxy.puts" ] && break; sleep 0.1; done
ok "[ -s '$TAP_TMP/proxy.puts' ]" "slow store: A's upload reached the proxy (held $SLOW s)"
b0=$(date +%s%N)
out=$(LMTP_TIMEOUT=60 lmtp "$LMTPD_SOCKET" "$TAP_TMP/m-plain.script")
bms=$((($(date +%s%N) - b0) / 1000000))
like "$out" "250 2\.0\.0 <alice@example.com> Ok: stored as" "slow store: B (no attachment, another session) is stored"
ok "[ $bms -lt $((SLOW * 1000 / 2)) ]" "... and answered within $((SLOW * 1000 / 2)) ms while A uploads (took $bms ms)"
wait "$apid"
ams=$((($(date +%s%N) - s) / 1000000))
like "$(cat "$TAP_TMP/m-slow.out")" "250 2\.0\.0 <alice@example.com> Ok: stored as" "... A is stored too (after $ams ms)"
ok "[ $ams -ge $((SLOW * 1000)) ]" "... A waited for its upload (>= $SLOW s)"
is "$(psqlc "SELECT location FROM blobs WHERE sha256 = decode('$(sha "$TAP_TMP/m-slow.big")', 'hex')")" s3 \
	"... its blob is a row with location 's3'"
pctl mail attachment "$(email_of m-slow)" 1 | cmp -s - "$TAP_TMP/m-slow.big" &&
	pass "... and reads back byte-exact from the bucket" || fail "... and reads back byte-exact from the bucket"
# Uploaded before the group, two messages with a 100 KB attachment each
# (the whole message small enough for one batch) join one group commit:
# a plain message F holds the one leader (its transaction waits for a
# lock on emails) while both upload; they queue behind it and are stored
# together, as rows without content.
head -c 102400 /dev/urandom >"$TAP_TMP/g.big1" && head -c 102400 /dev/urandom >"$TAP_TMP/g.big2"
mkmsg m-g1 "$TAP_TMP/g.big1" && mkmsg m-g2 "$TAP_TMP/g.big2"
sed 's/m-plain@/m-f@/' "$TAP_TMP/m-plain.eml" >"$TAP_TMP/m-f.eml"
lscript m-g1 alice@example.com && lscript m-g2 alice@example.com && lscript m-f alice@example.com
: >"$TAP_TMP/proxy.puts"
gpids=
for n in m-g1 m-g2; do
	LMTP_TIMEOUT=60 lmtp "$LMTPD_SOCKET" "$TAP_TMP/$n.script" >"$TAP_TMP/$n.out" 2>&1 &
	gpids="$gpids $!"
done
for _ in $(seq 300); do [ "$(wc -l <"$TAP_TMP/proxy.puts")" -ge 2 ] && break; sleep 0.1; done
coproc GLOCK { "$PG_BINDIR/psql" -qXAt -d "$POSTROOM_DB" >/dev/null 2>&1; }
echo "BEGIN; LOCK TABLE emails IN ACCESS EXCLUSIVE MODE;" >&"${GLOCK[1]}"
LMTP_TIMEOUT=60 lmtp "$LMTPD_SOCKET" "$TAP_TMP/m-f.script" >"$TAP_TMP/m-f.out" 2>&1 &
fpid=$!
for _ in $(seq 100); do
	[ "$(psqlc "SELECT count(*) FROM pg_locks WHERE relation = 'emails'::regclass AND NOT granted")" -ge 1 ] && break
	sleep 0.1
done
sleep $((SLOW + 1)) # both uploads done: queued behind F
echo "COMMIT;" >&"${GLOCK[1]}"
exec {GLOCK[1]}>&-
wait "$GLOCK_PID" 2>/dev/null
wait "$fpid"
# shellcheck disable=SC2086
wait $gpids
like "$(cat "$TAP_TMP/m-g1.out" "$TAP_TMP/m-g2.out" "$TAP_TMP/m-f.out" | grep -c '^250 2\.0\.0 <alice')" '^3$' \
	"group: both messages with uploads and the plain one are stored"
like "$(grep -c 'message-id=<m-g[12]@foreign.example>.*group=2' "$LMTPD_LOG")" '^2$' \
	"... the two uploaded ones in one group commit (group=2)" || diag "$(grep 'message-id=<m-' "$LMTPD_LOG")"
for n in 1 2; do
	is "$(psqlc "SELECT location || ':' || (content IS NULL) FROM blobs WHERE sha256 = decode('$(sha "$TAP_TMP/g.big$n")', 'hex')")" \
		"s3:true" "... m-g$n: its blob is a row with location 's3' and no content"
	pctl mail raw "$(email_of m-g$n)" | tail -c "$(stat -c %s "$TAP_TMP/m-g$n.eml")" | cmp -s - "$TAP_TMP/m-g$n.eml" &&
		pass "... m-g$n: mail raw reads back byte-exact" || fail "... m-g$n: mail raw reads back byte-exact"
done
lmtpd_stop "$LMTPD_PID"
kill "$proxy_pid" 2>/dev/null
wait "$proxy_pid" 2>/dev/null

diag "whole test: $(($(date +%s) - t0)) s"
done_testing
