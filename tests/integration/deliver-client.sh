#!/usr/bin/env bash
# deliver-client.sh - postroom-deliver's client mode (deliver.lmtpd_socket):
# the message goes to a real postroom-lmtpd over LMTP on a unix socket,
# against a real PostgreSQL. Exit statuses as in direct mode (stored 0,
# database down 75 4.3.0, lmtpd down or silent 75 4.3.0 and never a bounce,
# unknown single recipient 67 5.1.1, over-size 69 5.3.4), --sent and -a
# (sent_by), exactly once, and the stored raw bytes and identity compared
# with direct mode's for corpus samples (two databases, one per mode).
. "$(dirname "$0")/../lib/tap.sh"
. "$POSTROOM_SRCDIR/tests/lib/pg.sh"
. "$POSTROOM_SRCDIR/tests/lib/postfix.sh"
. "$POSTROOM_SRCDIR/tests/integration/deliver-helpers.bash"
LMTPD_BIN="$POSTROOM_BUILDDIR/postroom-lmtpd"
CORPUS="$POSTROOM_SRCDIR/tests/corpus"
if [ ! -x "$LMTPD_BIN" ]; then
	fail "postroom-lmtpd is built ($LMTPD_BIN)"
	done_testing
fi
pg_start && pg_fresh_db direct || { fail "database ready"; done_testing; }
DIRECT_CONF=$POSTROOM_CONF
pg_fresh_db client || { fail "database ready"; done_testing; }
CLIENT_BASE=$POSTROOM_CONF
for db in direct client; do
	POSTROOM_CONF=$TAP_TMP/$db.conf
	for u in alice bob; do pctl user add $u@example.com >/dev/null; done
done
LUSER=${PG_RUNAS:-$(id -un)}

# lmtpd_start NAME [EXTRA] - a postroom-lmtpd on $TAP_TMP/NAME/lmtp.sock for
# the client database; EXTRA: more top-level configuration lines. Sets
# L_SOCK, L_PID, L_LOG and writes $TAP_TMP/NAME/deliver.conf, the client's
# configuration (the same file plus deliver.lmtpd_socket).
lmtpd_start() {
	local dir=$TAP_TMP/$1 i
	mkdir -p "$dir" && chmod 755 "$dir"
	L_SOCK=$dir/lmtp.sock L_LOG=$dir/lmtpd.log
	{
		cat "$CLIENT_BASE"
		printf '%s\n' "${2:-}"
		echo "lmtpd = { listen = \"unix:$L_SOCK\"; user = \"$LUSER\"; socket_owner = \"\";"
		echo "  socket_group = \"\"; socket_mode = \"0666\"; pool_size = 2; };"
		echo "deliver = { lmtpd_socket = \"$L_SOCK\"; timeout = 10; };"
	} >"$dir/deliver.conf"
	chmod 644 "$dir/deliver.conf"
	"$LMTPD_BIN" -f -c "$dir/deliver.conf" 2>"$L_LOG" &
	L_PID=$!
	at_exit kill "$L_PID"
	for i in $(seq 100); do
		[ -S "$L_SOCK" ] && grep -q 'ready' "$L_LOG" && return 0
		sleep 0.1
	done
	cat "$L_LOG" >&2
	return 1
}
lmtpd_start main || { fail "postroom-lmtpd starts"; done_testing; }
MAIN_PID=$L_PID MAIN_LOG=$L_LOG
CONF=$TAP_TMP/main/deliver.conf
ccount() { POSTROOM_DB=client psqlc "SELECT count(*) FROM emails WHERE message_id = '$1'"; }
# crun FILE ARGS... - client mode with CONF (like deliver_run)
crun() {
	local f=$1
	shift
	"$DELIVER_BIN" -v -c "$CONF" "$@" <"$f" >"$TAP_TMP/d.out" 2>"$TAP_TMP/d.err"
	D_RC=$?
	D_OUT=$(cat "$TAP_TMP/d.out")
	D_ERR=$(cat "$TAP_TMP/d.err")
	D_ID=$(sed -n 's/.* email=\([0-9a-f-]*\) .*/\1/p' "$TAP_TMP/d.err" | tail -n 1)
	[ -n "$D_ID" ] || D_ID=-
}
cjson() { POSTROOM_CONF=$CLIENT_BASE pctl --json mail show "$1"; }

# --- stored: 0, the row is there, exactly once ------------------------------------
f=$(msg_file one.eml <<'M'
From: dave@example.org
To: alice@example.com
Subject: through lmtpd
Message-ID: <client-1@example.org>

hello over LMTP
.a line that starts with a dot
M
)
crun "$f" -f dave@example.org -C 192.0.2.7 -q 4ABCDEF -- alice@example.com
is "$D_RC" "0" "client mode: stored, exit 0"
is "$D_OUT" "" "... nothing on stdout"
like "$D_ERR" "via=lmtpd .*result=delivered" "... the log line says it went through lmtpd"
like "$(grep 'client-1@example.org' "$L_LOG")" "queue=4ABCDEF .*client=192\.0\.2\.7 " \
	"... -q and -C reached lmtpd (XFORWARD IDENT= and ADDR=)"
is "$(ccount client-1@example.org)" "1" "... the email row is in the database"
is "$(cjson "$D_ID" | jq -r '[.recipients[] | "\(.address):\(.delivered)"] | join(" ")')" "alice@example.com:true" \
	"... in alice's mailbox"
like "$(POSTROOM_CONF=$CLIENT_BASE pctl mail raw "$D_ID" | tr -d '\r')" "^\.a line that starts with a dot$" \
	"... a leading dot survives dot-stuffing"
first=$D_ID
crun "$f" -f dave@example.org -- alice@example.com
is "$D_RC $D_ID" "0 $first" "the same message again: 0, the same email"
crun "$f" -f dave@example.org -- bob@example.com
is "$(ccount client-1@example.org)" "1" "... stored once (a retry and a second recipient's call)"
is "$(cjson "$first" | jq -r '[.recipients[] | select(.delivered) | .address] | sort | join(" ")')" \
	"alice@example.com bob@example.com" "... the second call marked bob delivered"
is "$(POSTROOM_DB=client psqlc "SELECT count(*) FROM emails")" "1" "... and nothing else was stored"

# --- pipelining (RFC 2920): the envelope and DATA in one write ----------------------
# a proxy in front of the real lmtpd logs every read from the client: without
# pipelining MAIL, each RCPT and DATA each wait for a reply, so they cannot
# arrive in one read
python3 - "$TAP_TMP/pipe.sock" "$TAP_TMP/main/lmtp.sock" "$TAP_TMP/pipe.log" <<'PY' &
import socket, sys, select
ls = socket.socket(socket.AF_UNIX); ls.bind(sys.argv[1]); ls.listen(4)
log = open(sys.argv[3], "a")
while True:
    c, _ = ls.accept()
    u = socket.socket(socket.AF_UNIX); u.connect(sys.argv[2])
    open_ = True
    while open_:
        for r in select.select([c, u], [], [])[0]:
            d = r.recv(65536)
            if not d:
                open_ = False
                break
            if r is c:
                log.write("READ " + repr(d) + "\n"); log.flush()
                u.sendall(d)
            else:
                c.sendall(d)
    c.close(); u.close()
PY
proxy=$!
at_exit kill "$proxy"
for i in $(seq 50); do [ -S "$TAP_TMP/pipe.sock" ] && break; sleep 0.1; done
sed "s|lmtpd_socket = \"[^\"]*\"|lmtpd_socket = \"$TAP_TMP/pipe.sock\"|" "$CONF" >"$TAP_TMP/pipe.conf"
f=$(msg_file pipe.eml <<'M'
From: dave@example.org
Subject: pipelined
Message-ID: <client-pipe@example.org>

one write
M
)
"$DELIVER_BIN" -c "$TAP_TMP/pipe.conf" -f dave@example.org -C 192.0.2.9 -q 5PIPE -- alice@example.com \
	ghost@example.com bob@example.com <"$f" >/dev/null 2>&1
is "$?" "0" "pipelined: two recipients stored, one unknown: 0"
is "$(ccount client-pipe@example.org)" "1" "... stored once"
like "$(grep -F 'MAIL FROM' "$TAP_TMP/pipe.log")" \
	"^READ b'XFORWARD [^']*MAIL FROM:<dave@example.org>[^']*RCPT TO:<alice@example.com>[^']*RCPT TO:<ghost@example.com>[^']*RCPT TO:<bob@example.com>[^']*DATA.r.n'$" \
	"... XFORWARD, MAIL, the three RCPTs and DATA reached lmtpd in one read (pipelined)"
is "$(grep -c 'LHLO' "$TAP_TMP/pipe.log")" "1" "... LHLO alone, once"
kill "$proxy" 2>/dev/null

# a 4xx to a RCPT after DATA was already sent: the message never follows, 75
python3 - "$TAP_TMP/fake.sock" "$TAP_TMP/fake.log" <<'PY' &
import socket, sys
ls = socket.socket(socket.AF_UNIX); ls.bind(sys.argv[1]); ls.listen(4)
c, _ = ls.accept()
c.sendall(b"220 fake LMTP\r\n")
buf = b""
while b"\r\n" not in buf: buf += c.recv(4096)
c.sendall(b"250-fake\r\n250-PIPELINING\r\n250 8BITMIME\r\n")
buf = b""
while not buf.endswith(b"DATA\r\n"):
    d = c.recv(4096)
    if not d: break
    buf += d
c.sendall(b"250 2.1.0 Ok\r\n451 4.2.0 try later\r\n250 2.1.5 Ok\r\n354 go ahead\r\n")
after = b""
c.settimeout(15)
try:
    while True:
        d = c.recv(4096)
        if not d: break
        after += d
except socket.timeout:
    pass
open(sys.argv[2], "w").write(repr(after))
PY
fake=$!
at_exit kill "$fake"
for i in $(seq 50); do [ -S "$TAP_TMP/fake.sock" ] && break; sleep 0.1; done
sed "s|lmtpd_socket = \"[^\"]*\"|lmtpd_socket = \"$TAP_TMP/fake.sock\"|" "$CONF" >"$TAP_TMP/fake.conf"
"$DELIVER_BIN" -c "$TAP_TMP/fake.conf" -f dave@example.org -- alice@example.com bob@example.com <"$f" \
	>"$TAP_TMP/o" 2>/dev/null
is "$?" "75" "a pipelined RCPT answered 451 (DATA already 354): 75"
like "$(cat "$TAP_TMP/o")" "^4\.2\.0 " "... with the reply's 4.2.0"
wait "$fake"
unlike "$(cat "$TAP_TMP/fake.log" 2>/dev/null || echo 'no log')" "no log|one write|\\\\r\\\\n\\.\\\\r\\\\n" \
	"... and the message never followed DATA (nothing the server could store)"

# a server that announces no PIPELINING gets one command a write
python3 - "$TAP_TMP/nopipe.sock" "$TAP_TMP/nopipe.log" <<'PY' &
import socket, sys
ls = socket.socket(socket.AF_UNIX); ls.bind(sys.argv[1]); ls.listen(4)
c, _ = ls.accept()
log = open(sys.argv[2], "w")
def send(b):
    try: c.sendall(b)
    except OSError: pass
send(b"220 fake LMTP\r\n")
buf, data, rcpts = b"", False, 0
while True:
    d = c.recv(65536)
    if not d: break
    if not data: log.write("READ " + repr(d) + "\n"); log.flush()
    buf += d
    while True:
        if data:
            if b"\r\n.\r\n" not in buf: break
            buf = buf.split(b"\r\n.\r\n", 1)[1]; data = False
            send(b"250 2.0.0 <r> stored as 0123abcd\r\n" * rcpts)
            continue
        if b"\r\n" not in buf: break
        line, buf = buf.split(b"\r\n", 1)
        v = line[:4].upper()
        if v == b"LHLO": send(b"250-fake\r\n250 8BITMIME\r\n")
        elif v == b"RCPT": rcpts += 1; send(b"250 2.1.5 Ok\r\n")
        elif v == b"DATA": data = True; send(b"354 go ahead\r\n")
        elif v == b"QUIT": send(b"221 bye\r\n")
        else: send(b"250 2.1.0 Ok\r\n")
PY
nopipe=$!
at_exit kill "$nopipe"
for i in $(seq 50); do [ -S "$TAP_TMP/nopipe.sock" ] && break; sleep 0.1; done
sed "s|lmtpd_socket = \"[^\"]*\"|lmtpd_socket = \"$TAP_TMP/nopipe.sock\"|" "$CONF" >"$TAP_TMP/nopipe.conf"
"$DELIVER_BIN" -c "$TAP_TMP/nopipe.conf" -f dave@example.org -- alice@example.com bob@example.com <"$f" \
	>/dev/null 2>&1
is "$?" "0" "a server without PIPELINING: delivered, 0"
wait "$nopipe"
is "$(grep -c 'RCPT TO' "$TAP_TMP/nopipe.log") $(grep -Ec 'RCPT.*(RCPT|DATA)|MAIL.*RCPT' "$TAP_TMP/nopipe.log")" "2 0" \
	"... MAIL, each RCPT and DATA in a write of its own (no pipelining without PIPELINING)"

# --- exit statuses ------------------------------------------------------------------
f=$(msg_file unknown.eml <<'M'
From: dave@example.org
Subject: nobody
Message-ID: <client-2@example.org>

x
M
)
crun "$f" -f dave@example.org -- ghost@example.com
is "$D_RC" "67" "unknown single recipient: 67 (EX_NOUSER)"
like "$D_OUT" "^5\.1\.1 " "... output starts with 5.1.1"
is "$(ccount client-2@example.org)" "0" "... nothing stored"
crun "$f" -f dave@example.org -- ghost@example.com alice@example.com
is "$D_RC" "0" "unknown among several recipients: 0 (the known one stored)"
like "$D_ERR" "recipient <ghost@example.com> refused" "... a warning names the refused recipient"
is "$(ccount client-2@example.org)" "1" "... stored once for alice"

f=$(msg_file sent.eml <<'M'
From: alice@example.com
To: friend@example.org
Subject: submitted by alice
Message-ID: <client-3@example.org>

hello friend
M
)
crun "$f" -f alice@example.com -a alice@example.com --sent -- sent-copy@postroom.invalid
is "$D_RC" "0" "--sent copy: 0"
j=$(cjson "$D_ID")
is "$(jq -r .sent_by <<<"$j")" "alice@example.com" "... sent_by is the -a user (MAIL FROM AUTH=)"
is "$(jq -r '[.recipients[] | "\(.address):\(.delivered)"] | join(" ")' <<<"$j")" "friend@example.org:false" \
	"... the route's marker is no recipient; nobody's inbox"
f=$(msg_file auth.eml <<'M'
From: bob@example.com
Subject: from bob
Message-ID: <client-4@example.org>

x
M
)
crun "$f" -f bob@example.com -a bob@example.com -- alice@example.com
is "$D_RC $(cjson "$D_ID" | jq -r .sent_by)" "0 bob@example.com" "-a user: sent_by set"

# over-size: a second lmtpd with a small limit (the limit is lmtpd's)
lmtpd_start small 'limits = { message_size_max = 2048; };' || fail "second postroom-lmtpd starts"
python3 -c 'import sys; sys.stdout.write("From: d@example.org\nSubject: big\nMessage-ID: <client-5@example.org>\n\n" + ("x" * 70 + "\n") * 60)' >"$TAP_TMP/big.eml"
"$DELIVER_BIN" -c "$TAP_TMP/small/deliver.conf" -f d@example.org -- alice@example.com <"$TAP_TMP/big.eml" >"$TAP_TMP/o" 2>/dev/null
is "$?" "69" "over the size limit: 69"
like "$(cat "$TAP_TMP/o")" "^5\.3\.4 " "... output starts with 5.3.4"
is "$(ccount client-5@example.org)" "0" "... nothing stored"
kill "$L_PID" 2>/dev/null; wait "$L_PID" 2>/dev/null

# database down: lmtpd answers 451 4.3.0, the client defers
f=$(msg_file down.eml <<'M'
From: d@example.org
Subject: database down
Message-ID: <client-6@example.org>

x
M
)
pg_server_stop
crun "$f" -f d@example.org -- alice@example.com
is "$D_RC" "75" "PostgreSQL stopped: 75"
like "$D_OUT" "^4\.3\.0 " "... output starts with 4.3.0"
pg_server_start
is "$(ccount client-6@example.org)" "0" "... nothing stored"
for i in 1 2 3; do
	crun "$f" -f d@example.org -- alice@example.com
	[ "$D_RC" = 0 ] && break
	sleep 1
done
is "$D_RC $(ccount client-6@example.org)" "0 1" "... and once it is back, the retry stores it"

# lmtpd silent: the session times out (deliver.timeout = 10) and defers
python3 - "$TAP_TMP/silent.sock" <<'PY' &
import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(4)
c, _ = s.accept(); time.sleep(30)
PY
silent=$!
at_exit kill "$silent"
for i in $(seq 50); do [ -S "$TAP_TMP/silent.sock" ] && break; sleep 0.1; done
sed "s|lmtpd_socket = \"[^\"]*\"|lmtpd_socket = \"$TAP_TMP/silent.sock\"|" "$CONF" >"$TAP_TMP/silent.conf"
start=$(date +%s)
"$DELIVER_BIN" -v -c "$TAP_TMP/silent.conf" -f d@example.org -- alice@example.com <"$f" >"$TAP_TMP/o" 2>"$TAP_TMP/e"
rc=$?
secs=$(( $(date +%s) - start ))
is "$rc" "75" "lmtpd silent: 75 after deliver.timeout"
ok "[ $secs -ge 9 ] && [ $secs -le 13 ]" "... after about 10 s (${secs}s)"
like "$(cat "$TAP_TMP/o")" "^4\.3\.0 " "... 4.3.0"
like "$(cat "$TAP_TMP/e")" "MAIL DEFERRED: postroom-lmtpd at .*timed out" "... logged loudly"
kill "$silent" 2>/dev/null

# --- setgid (mailbox_command): the group reads the configuration, then goes ------------
if getent group postroom-dtest >/dev/null || groupadd --system postroom-dtest 2>/dev/null; then
	chmod 711 "$PG_DIR"
	cp "$DELIVER_BIN" "$TAP_TMP/deliver-sgid"
	chgrp postroom-dtest "$TAP_TMP/deliver-sgid" && chmod 2755 "$TAP_TMP/deliver-sgid"
	cp "$CONF" "$TAP_TMP/secret.conf"
	chown root:postroom-dtest "$TAP_TMP/secret.conf" && chmod 640 "$TAP_TMP/secret.conf"
	printf 'From: d@example.org\nSubject: setgid\nMessage-ID: <client-8@example.org>\n\nx\n' >"$TAP_TMP/sgid.eml"
	chmod 644 "$TAP_TMP/sgid.eml"
	runuser -u nobody -- env SENDER=d@example.org RECIPIENT=alice@example.com \
		"$TAP_TMP/deliver-sgid" -c "$TAP_TMP/secret.conf" <"$TAP_TMP/sgid.eml" >"$TAP_TMP/o" 2>&1
	is "$?" "0" "setgid client mode: nobody delivers through the group-readable configuration"
	is "$(ccount client-8@example.org)" "1" "... stored by lmtpd"
	chmod 664 "$TAP_TMP/secret.conf"
	runuser -u nobody -- env SENDER=d@example.org RECIPIENT=alice@example.com \
		"$TAP_TMP/deliver-sgid" -c "$TAP_TMP/secret.conf" <"$TAP_TMP/sgid.eml" >"$TAP_TMP/o" 2>&1
	is "$?" "75" "... a configuration its group may change is refused: 75"
else
	diag "cannot create a group: setgid tests skipped"
fi

# --- raw bytes and identity: the same as direct mode ---------------------------------
# corpus samples, plus local(8)-style delivery lines, CRLF and no final newline
n=0
while IFS=$'\t' read -r path _; do
	[ "$path" = path ] && continue
	n=$((n + 1))
	[ $((n % 37)) = 1 ] && cp "$CORPUS/$path" "$TAP_TMP/raw-$n.eml"
done <"$CORPUS/MANIFEST.tsv"
{ printf 'From dave@example.org Mon Nov 23 00:00:00 2026\nReturn-Path: <dave@example.org>\nDelivered-To: alice@example.com\n'
  printf 'From: dave@example.org\nSubject: prefixed\nMessage-ID: <raw-prefix@example.org>\n\n.dot\nbody\n'; } >"$TAP_TMP/raw-prefix.eml"
printf 'From: dave@example.org\r\nSubject: crlf\r\nMessage-ID: <raw-crlf@example.org>\r\n\r\nbody\r\n' >"$TAP_TMP/raw-crlf.eml"
printf 'From: dave@example.org\nSubject: no newline\nMessage-ID: <raw-nonl@example.org>\n\nbody' >"$TAP_TMP/raw-nonl.eml"
if grep -qi '^250-CHUNKING' < <(printf 'LHLO t\r\nQUIT\r\n' | python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(sys.stdin.buffer.read())
out = b""
while True:
    d = s.recv(4096)
    if not d: break
    out += d
sys.stdout.write(out.decode("latin-1").replace("\r", ""))' "$TAP_TMP/main/lmtp.sock" 2>/dev/null); then
	chunking=1
else
	chunking=0
	diag "postroom-lmtpd announces no CHUNKING: client mode sends DATA, and the raw bytes can only match direct mode's up to line endings"
fi
same=0 total=0 diffs=
for f in "$TAP_TMP"/raw-*.eml; do
	# DATA always ends the message with CRLF (RFC 5321): only BDAT keeps
	# a missing final newline missing
	[ "$chunking" = 0 ] && [ "${f##*/}" = raw-nonl.eml ] && continue
	total=$((total + 1))
	POSTROOM_CONF=$DIRECT_CONF deliver_run "$f" -f dave@example.org -- alice@example.com
	did=$D_ID drc=$D_RC
	crun "$f" -f dave@example.org -- alice@example.com
	cid=$D_ID
	if [ "$drc" != 0 ] || [ "$D_RC" != 0 ] || [ "$did" = - ] || [ "$cid" = - ]; then
		diffs="$diffs ${f##*/}(exit $drc/$D_RC)"
		continue
	fi
	dsha=$(POSTROOM_DB=direct psqlc "SELECT encode(content_sha256, 'hex') FROM emails WHERE id = '$did'")
	csha=$(POSTROOM_DB=client psqlc "SELECT encode(content_sha256, 'hex') FROM emails WHERE id = '$cid'")
	POSTROOM_CONF=$DIRECT_CONF pctl mail raw "$did" >"$TAP_TMP/raw.d"
	POSTROOM_CONF=$CLIENT_BASE pctl mail raw "$cid" >"$TAP_TMP/raw.c"
	if [ "$chunking" = 0 ]; then
		# DATA: compare with CRLF line endings (a missing final newline is added)
		python3 -c 'import sys
d = open(sys.argv[1], "rb").read().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
if not d.endswith(b"\r\n"): d += b"\r\n"
open(sys.argv[1], "wb").write(d)' "$TAP_TMP/raw.d"
	fi
	if [ -n "$dsha" ] && [ "$dsha" = "$csha" ] && cmp -s "$TAP_TMP/raw.d" "$TAP_TMP/raw.c"; then
		same=$((same + 1))
	else
		diffs="$diffs ${f##*/}"
	fi
done
ok "[ $total -ge 10 ]" "enough raw samples ($total)"
if [ "$chunking" = 1 ]; then
	is "$same/$total" "$total/$total" "client and direct mode store byte-identical raw messages with the same identity${diffs:+ (differ:$diffs)}"
else
	is "$same/$total" "$total/$total" "client (DATA) and direct mode: the same raw message up to line endings, the same identity${diffs:+ (differ:$diffs)}"
fi
is "$(POSTROOM_DB=client psqlc "SELECT count(*) FROM email_raw r JOIN emails e ON e.id = r.email_id WHERE e.message_id = 'raw-prefix@example.org' AND position(convert_to('Delivered-To', 'UTF8') in r.content) = 0")" \
	"1" "the From_ line and this envelope's delivery lines are not stored (client mode)"

# --- behind a real Postfix pipe(8) service --------------------------------------------
if command -v postfix >/dev/null && command -v swaks >/dev/null; then
	chmod 711 "$PG_DIR"
	PF_MAIN_EXTRA=(
		"virtual_mailbox_domains = example.com"
		"virtual_transport = postroom"
		"postroom_destination_recipient_limit = 1"
		"smtpd_reject_unlisted_recipient = no"
		"bounce_queue_lifetime = 0"
	)
	PF_MASTER_EXTRA=(
		"postroom unix - n n - - pipe"
		"  flags=hu user=nobody null_sender="
		"  argv=$DELIVER_BIN -c $CONF -f \${sender} -a \${sasl_username} -C \${client_address} -q \${queue_id} -- \${recipient}"
	)
	if pf_start; then
		echo "through postfix" | swaks --server 127.0.0.1 --port "$PF_PORT_MX" --from s@postroom.test \
			--to alice@example.com,bob@example.com,nobody@example.com \
			--header "Message-ID: <client-pf@postroom.test>" --body - >/dev/null 2>&1
		pf_wait_log 'to=<bob@example.com>.*status=sent' 20 && pf_wait_log 'to=<alice@example.com>.*status=sent' 10
		is "$(ccount client-pf@postroom.test)" "1" "Postfix pipe(8) -> client mode -> lmtpd: stored once for two recipients"
		pf_wait_log 'to=<nobody@example.com>.*status=bounced' 10
		like "$(grep 'to=<nobody@example.com>' "$PF_LOG" | tail -n 1)" 'dsn=5\.1\.1.*status=bounced' \
			"... the unknown recipient alone bounces with 5.1.1"
		qid=$(grep -o '[0-9A-F]\{6,\}: to=<alice@example.com>' "$PF_LOG" | tail -n 1 | cut -d: -f1)
		like "$(grep 'client-pf@postroom.test' "$MAIN_LOG" | head -n 1)" "queue=$qid " \
			"... Postfix's queue id reached lmtpd (-q, XFORWARD IDENT=)"
	else
		fail "postfix started"
	fi
else
	pass "# SKIP postfix or swaks not installed"
fi

# --- lmtpd down: 75 4.3.0, never a bounce ---------------------------------------------
kill "$MAIN_PID" && wait "$MAIN_PID" 2>/dev/null
f=$(msg_file nolmtpd.eml <<'M'
From: d@example.org
Subject: lmtpd down
Message-ID: <client-7@example.org>

x
M
)
crun "$f" -f d@example.org -- alice@example.com
is "$D_RC" "75" "lmtpd stopped: 75"
like "$D_OUT" "^4\.3\.0 " "... output starts with 4.3.0"
like "$D_ERR" "MAIL DEFERRED: postroom-lmtpd at $TAP_TMP/main/lmtp.sock: cannot connect" "... logged loudly"
is "$(ccount client-7@example.org)" "0" "... nothing stored"
done_testing
