#!/usr/bin/env bash
# bench/deliver-bench.sh - postroom-deliver against Dovecot's dovecot-lda on
# the same machine, in one run (not a test; results go to doc/BENCHMARKS.md).
#
#   POSTROOM_BUILDDIR=build bench/deliver-bench.sh [--quick]
#
# 1. Throughput: the corpus in tests/corpus (306 messages) and a synthetic mix of
#    1,000 messages (2-60 KB, one in five with an attachment, fixed seed),
#    delivered sequentially, one process per message, by each program:
#    postroom-deliver in direct mode (it executes postroom-deliver-store,
#    which stores into a private PostgreSQL: fsync and synchronous_commit
#    ON, as in production), postroom-deliver in client mode
#    (deliver.lmtpd_socket: it hands each message to a private
#    postroom-lmtpd started here, storing into a second database of the
#    same PostgreSQL), dovecot-lda into a Maildir (its default fsync
#    policy) with its own tiny configuration. All run as the same
#    unprivileged user, the loops fork nothing else; they take turns
#    over slices of 50 messages, so that the load of a shared machine
#    hits them alike. Reports messages per second and the ratios
#    (target: postroom >= 1.0x dovecot-lda). A fourth loop in the same
#    rotation, dd(1) copying each message to a new file with conv=fsync,
#    is the floor of a program that is started per message and makes the
#    message durable (what e2e-bench's pipefloor path runs under pipe(8)):
#    client mode is also reported against it (issue 23: >= 0.85x).
# 2. Memory: peak RSS (GNU time %M) of one 45 MiB message carrying a 24 MiB
#    attachment (target: <= 2 x the message size); in client mode the
#    front end's and postroom-lmtpd's (VmHWM) separately.
# --quick: the synthetic mix only, 300 messages.
set -u
POSTROOM_SRCDIR=${POSTROOM_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
export POSTROOM_SRCDIR
. "$POSTROOM_SRCDIR/tests/lib/tap.sh"
PG_FSYNC=on
. "$POSTROOM_SRCDIR/tests/lib/pg.sh"
quick=0
[ "${1:-}" = --quick ] && quick=1
LDA=/usr/lib/dovecot/dovecot-lda
BENCH_USER=postroom-bench
DELIVER="$POSTROOM_BUILDDIR/postroom-deliver"
LMTPD="$POSTROOM_BUILDDIR/postroom-lmtpd"
[ -x "$DELIVER" ] || { echo "no $DELIVER: build first" >&2; exit 1; }
[ -x "$LMTPD" ] || echo "no $LMTPD: client mode not measured" >&2
[ -x "$LDA" ] || { echo "no $LDA: apt-get install dovecot-core" >&2; exit 1; }
id "$BENCH_USER" >/dev/null 2>&1 ||
	useradd --system --no-create-home --shell /usr/sbin/nologin "$BENCH_USER" || exit 1

pg_start && pg_fresh_db bench_client || { echo "PostgreSQL did not start" >&2; exit 1; }
CLIENT_DB_CONF=$POSTROOM_CONF
pctl user add rcpt@example.com >/dev/null
pg_fresh_db bench || { echo "PostgreSQL did not start" >&2; exit 1; }
chmod 711 "$PG_DIR"
chmod 644 "$POSTROOM_CONF" "$CLIENT_DB_CONF"	# trust authentication: no secret in them
pctl user add rcpt@example.com >/dev/null

# client mode: a private postroom-lmtpd on a unix socket, the second
# database; the client's configuration is the same file
client_conf=
if [ -x "$LMTPD" ]; then
	lmtp_dir="$TAP_TMP/lmtpd"
	mkdir -p "$lmtp_dir" && chmod 755 "$lmtp_dir"
	client_conf="$lmtp_dir/postroom.conf"
	{
		cat "$CLIENT_DB_CONF"
		echo "lmtpd = { listen = \"unix:$lmtp_dir/lmtp.sock\"; user = \"$BENCH_USER\"; socket_owner = \"\";"
		echo "  socket_group = \"\"; socket_mode = \"0666\"; };"
		echo "deliver = { lmtpd_socket = \"$lmtp_dir/lmtp.sock\"; };"
	} >"$client_conf"
	chmod 644 "$client_conf"
	"$LMTPD" -f -c "$client_conf" 2>"$lmtp_dir/lmtpd.log" &
	lmtpd_pid=$!
	at_exit kill "$lmtpd_pid"
	for _ in $(seq 100); do
		[ -S "$lmtp_dir/lmtp.sock" ] && grep -q ready "$lmtp_dir/lmtpd.log" && break
		sleep 0.1
	done
	[ -S "$lmtp_dir/lmtp.sock" ] || { cat "$lmtp_dir/lmtpd.log" >&2; client_conf=; }
fi

# the messages: corpus + synthetic, as files in one directory
msgs="$TAP_TMP/msgs"
mkdir -p "$msgs"
n_synth=1000
[ "$quick" = 1 ] && n_synth=300
if [ "$quick" = 0 ]; then
	i=0
	while IFS=$'\t' read -r path _; do
		[ "$path" = path ] && continue
		i=$((i + 1))
		cp "$POSTROOM_SRCDIR/tests/corpus/$path" "$msgs/c$(printf %04d $i)"
	done <"$POSTROOM_SRCDIR/tests/corpus/MANIFEST.tsv"
fi
python3 - "$msgs" "$n_synth" <<'PY'
import base64, random, sys
out, n = sys.argv[1], int(sys.argv[2])
rnd = random.Random(20261123)
words = "the of and to in is for on with that mail store thread reply attach".split()
for k in range(n):
    size = rnd.randint(2 * 1024, 60 * 1024)
    head = ("From: Sender %d <sender%d@example.org>\nTo: rcpt@example.com\n"
            "Subject: synthetic message %d\nMessage-ID: <synth-%d@example.org>\n"
            "Date: Mon, 23 Nov 2026 00:00:00 +0000\nMIME-Version: 1.0\n") % (k, k % 50, k, k)
    if k % 5 == 0:
        att = rnd.randbytes(size // 2)
        text_len = size - len(head) - len(att) * 4 // 3 - 400
        text = " ".join(rnd.choice(words) for _ in range(max(text_len, 100) // 5))
        b64 = base64.encodebytes(att).decode()
        body = ("Content-Type: multipart/mixed; boundary=\"b%d\"\n\n--b%d\n"
                "Content-Type: text/plain; charset=utf-8\n\n%s\n--b%d\n"
                "Content-Type: application/pdf; name=\"doc%d.pdf\"\n"
                "Content-Disposition: attachment; filename=\"doc%d.pdf\"\n"
                "Content-Transfer-Encoding: base64\n\n%s--b%d--\n") % (k, k, text, k, k, k, b64, k)
    else:
        text = " ".join(rnd.choice(words) for _ in range((size - len(head)) // 5))
        body = "Content-Type: text/plain; charset=utf-8\n\n" + "\n".join(
            text[i:i + 72] for i in range(0, len(text), 72)) + "\n"
    open("%s/s%04d" % (out, k), "w").write(head + body)
PY
chmod -R a+rX "$TAP_TMP"
count=$(ls "$msgs" | wc -l)
bytes=$(cat "$msgs"/* | wc -c)

# dovecot-lda: its own configuration, a Maildir, the same user
lda_dir="$TAP_TMP/lda"
mkdir -p "$lda_dir/home" "$lda_dir/run"
cat >"$lda_dir/dovecot.conf" <<EOF
base_dir = $lda_dir/run
log_path = $lda_dir/dovecot.log
ssl = no
protocols =
postmaster_address = postmaster@example.com
mail_location = maildir:$lda_dir/home/Maildir
userdb {
  driver = static
  args = uid=$BENCH_USER gid=$BENCH_USER home=$lda_dir/home
}
passdb {
  driver = static
  args = nopassword
}
EOF
touch "$lda_dir/dovecot.log"
chown -R "$BENCH_USER" "$lda_dir"

# run_loop NAME LIST CMD... - deliver every message named in LIST with CMD
# (stdin = message) as the bench user; prints the seconds taken and the
# number of failures
run_loop() {
	local name=$1 list=$2; shift 2
	mkdir -p "$TAP_TMP/$name" && chown "$BENCH_USER" "$TAP_TMP/$name"
	runuser -u "$BENCH_USER" -- bash -c '
		list=$1 out=$2; shift 2; fails=0
		start=$(date +%s.%N)
		while read -r f; do
			"$@" <"$f" >"$out/last" 2>&1 || { fails=$((fails + 1)); echo "${f##*/}: $(head -c 300 "$out/last")" >>"$out/failures"; }
		done <"$list"
		end=$(date +%s.%N)
		echo "$(echo "$end - $start" | bc) $fails"' _ "$list" "$TAP_TMP/$name" "$@"
}

# run_floor LIST - the floor: dd conv=fsync of every message in LIST to a
# new file, as the bench user; prints the seconds taken and the failures
run_floor() {
	mkdir -p "$TAP_TMP/floor" && chown "$BENCH_USER" "$TAP_TMP/floor"
	runuser -u "$BENCH_USER" -- bash -c '
		list=$1 out=$2; fails=0
		start=$(date +%s.%N)
		while read -r f; do
			dd of="$out/${f##*/}" bs=65536 conv=fsync status=none <"$f" || fails=$((fails + 1))
		done <"$list"
		end=$(date +%s.%N)
		echo "$(echo "$end - $start" | bc) $fails"' _ "$1" "$TAP_TMP/floor"
}

# The programs take turns over slices of 50 messages (direct, client,
# dovecot-lda, the dd floor, then the next slice), so that a change in the load of this
# shared machine during the run hits all of them alike.
echo "== $count messages, $bytes bytes; $(nproc) cores; $(uname -r)"
ls "$msgs"/* >"$TAP_TMP/all.list"
split -l 50 -d -a 3 "$TAP_TMP/all.list" "$TAP_TMP/slice."
chmod a+r "$TAP_TMP"/slice.*
t_pr=0 f_pr=0 t_cl=0 f_cl=0 t_lda=0 f_lda=0 t_fl=0 f_fl=0
for slice in "$TAP_TMP"/slice.*; do
	read -r t f < <(run_loop postroom "$slice" "$DELIVER" -c "$POSTROOM_CONF" -f sender@example.org -- rcpt@example.com)
	t_pr=$(echo "$t_pr + $t" | bc) f_pr=$((f_pr + f))
	if [ -n "$client_conf" ]; then
		read -r t f < <(run_loop client "$slice" "$DELIVER" -c "$client_conf" -f sender@example.org -- rcpt@example.com)
		t_cl=$(echo "$t_cl + $t" | bc) f_cl=$((f_cl + f))
	fi
	read -r t f < <(run_loop dovecot-lda "$slice" "$LDA" -c "$lda_dir/dovecot.conf" -f sender@example.org)
	t_lda=$(echo "$t_lda + $t" | bc) f_lda=$((f_lda + f))
	read -r t f < <(run_floor "$slice")
	t_fl=$(echo "$t_fl + $t" | bc) f_fl=$((f_fl + f))
done
for name in postroom client dovecot-lda; do
	[ -s "$TAP_TMP/$name/failures" ] && head -n 5 "$TAP_TMP/$name/failures" >&2
done
stored=$(psqlc "SELECT count(*) FROM emails")
maildir=$(ls "$lda_dir/home/Maildir/new" | wc -l)
rate_pr=$(echo "scale=1; $count / $t_pr" | bc)
rate_lda=$(echo "scale=1; $count / $t_lda" | bc)
echo "postroom-deliver: ${t_pr}s, $rate_pr msg/s, $f_pr failures, $stored emails stored"
echo "dovecot-lda:      ${t_lda}s, $rate_lda msg/s, $f_lda failures, $maildir files in the Maildir"
echo "ratio postroom / dovecot-lda: $(echo "scale=2; $rate_pr / $rate_lda" | bc)x"
if [ -n "$client_conf" ]; then
	stored_cl=$(POSTROOM_DB=bench_client psqlc "SELECT count(*) FROM emails")
	rate_cl=$(echo "scale=1; $count / $t_cl" | bc)
	echo "postroom-deliver client mode (via postroom-lmtpd): ${t_cl}s, $rate_cl msg/s, $f_cl failures, $stored_cl emails stored"
	echo "ratio postroom client mode / dovecot-lda: $(echo "scale=2; $rate_cl / $rate_lda" | bc)x"
	echo "ratio postroom client mode / direct mode: $(echo "scale=2; $rate_cl / $rate_pr" | bc)x"
fi
rate_fl=$(echo "scale=1; $count / $t_fl" | bc)
echo "floor, dd conv=fsync to a new file: ${t_fl}s, $rate_fl msg/s, $f_fl failures"
echo "ratio postroom direct mode / dd floor: $(echo "scale=2; $rate_pr / $rate_fl" | bc)x"
[ -n "$client_conf" ] &&
	echo "ratio postroom client mode / dd floor: $(echo "scale=2; $rate_cl / $rate_fl" | bc)x (target >= 0.85x)"

# one 45 MiB message with a 24 MiB attachment
big="$TAP_TMP/big.eml"
python3 - "$big" <<'PY'
import base64, os, sys
MiB = 1024 * 1024
att = os.urandom(24 * MiB)
head = ("From: big@example.org\nTo: rcpt@example.com\nSubject: 45 MiB\n"
        "Message-ID: <big-45@example.org>\nMIME-Version: 1.0\n"
        "Content-Type: multipart/mixed; boundary=\"BIG\"\n\n")
b64 = base64.encodebytes(att).decode()
tail = "\n--BIG--\n"
part_att = ("--BIG\nContent-Type: application/octet-stream; name=\"big.bin\"\n"
            "Content-Disposition: attachment; filename=\"big.bin\"\n"
            "Content-Transfer-Encoding: base64\n\n")
part_text = "--BIG\nContent-Type: text/plain; charset=utf-8\n\n"
room = 45 * MiB - len(head) - len(part_text) - len(part_att) - len(b64) - len(tail) - 1
line = "All work and no play makes a big message, line by line, seventy chars.\n"
text = (line * (room // len(line) + 1))[:room]
with open(sys.argv[1], "w") as f:
    f.write(head + part_text + text + "\n" + part_att + b64 + tail)
PY
chmod 644 "$big"
size=$(wc -c <"$big")
lines=$(wc -l <"$big")
rss() { /usr/bin/time -f %M "$@" <"$big" 2>&1 >/dev/null | tail -n 1; }
rss_pr=$(runuser -u "$BENCH_USER" -- /usr/bin/time -f %M "$DELIVER" -c "$POSTROOM_CONF" -f big@example.org -- rcpt@example.com <"$big" 2>&1 >/dev/null | tail -n 1)
rss_lda=$(runuser -u "$BENCH_USER" -- /usr/bin/time -f %M "$LDA" -c "$lda_dir/dovecot.conf" -f big@example.org <"$big" 2>&1 >/dev/null | tail -n 1)
stored_big=$(psqlc "SELECT e.size_bytes || ' bytes, attachment ' || a.size_bytes || ' bytes' FROM emails e JOIN email_attachments a ON a.email_id = e.id WHERE e.message_id = 'big-45@example.org'")
echo "big message: $size bytes ($((size + lines)) with CRLF), 24 MiB attachment; stored: ${stored_big:-NOT STORED}"
echo "peak RSS postroom-deliver: $rss_pr KiB = $(echo "scale=2; $rss_pr * 1024 / $size" | bc) x the message size"
echo "peak RSS dovecot-lda:      $rss_lda KiB = $(echo "scale=2; $rss_lda * 1024 / $size" | bc) x the message size"
if [ -n "$client_conf" ]; then
	rss_cl=$(runuser -u "$BENCH_USER" -- /usr/bin/time -f %M "$DELIVER" -c "$client_conf" -f big@example.org -- rcpt@example.com <"$big" 2>&1 >/dev/null | tail -n 1)
	hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$lmtpd_pid/status" 2>/dev/null)
	stored_big_cl=$(POSTROOM_DB=bench_client psqlc "SELECT e.size_bytes || ' bytes' FROM emails e WHERE e.message_id = 'big-45@example.org'")
	echo "peak RSS postroom-deliver client mode: $rss_cl KiB (front end); postroom-lmtpd VmHWM ${hwm:-?} KiB = $(echo "scale=2; ${hwm:-0} * 1024 / $size" | bc) x the message size; stored: ${stored_big_cl:-NOT STORED}"
fi
