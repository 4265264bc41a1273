#!/usr/bin/env bash
# lmtpd-rss.sh - postroom-lmtpd gives memory back (issue 16 item 2): four
# hostile messages of 1,000,000 header lines (bench/gen-hostile headers,
# 21 MB each) sent at once over four sessions are all stored, and 10 s
# after the last reply the daemon's RSS (VmRSS) is within 64 MiB of its
# idle figure (it stayed at 2.4 GB when GLib's slices and glibc's arenas
# kept what the parser had freed).
. "$(dirname "$0")/../lib/tap.sh"
. "$POSTROOM_SRCDIR/tests/lib/pg.sh"
. "$POSTROOM_SRCDIR/tests/integration/lmtpd-helpers.bash"
N=4
pg_start && pg_fresh_db postroom || { fail "database ready"; done_testing; }
pctl user add alice@example.com >/dev/null
python3 "$POSTROOM_SRCDIR/bench/gen-hostile" --size 14000000 "$TAP_TMP/gen" headers ||
	{ fail "bench/gen-hostile"; done_testing; }
for i in $(seq $N); do
	sed "s/^Message-ID: <hostile-headers@/Message-ID: <rss-$i@/; s/\$/\r/" "$TAP_TMP/gen/headers" >"$TAP_TMP/m$i"
	cat >"$TAP_TMP/s$i" <<-S
	R
	S LHLO c
	R
	S MAIL FROM:<mallory@example.net>
	R
	S RCPT TO:<alice@example.com>
	R
	S DATA
	R
	F $TAP_TMP/m$i
	S .
	R
	S QUIT
	S
done
rm -rf "$TAP_TMP/gen"
lmtpd_start || { fail "lmtpd started"; done_testing; }
rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$LMTPD_PID/status"; }
sleep 1
idle=$(rss)
pids=()
for i in $(seq $N); do
	LMTP_TIMEOUT=120 lmtp "$LMTPD_SOCKET" "$TAP_TMP/s$i" >"$TAP_TMP/o$i" &
	pids+=($!)
done
wait "${pids[@]}"
peak=$(awk '/^VmHWM:/ { print $2 }' "/proc/$LMTPD_PID/status")
is "$(cat "$TAP_TMP"/o* | grep -c 'Ok: stored')" $N "$N messages of 1,000,000 header lines at once: all stored"
is "$(psqlc "SELECT count(*) FROM emails WHERE message_id LIKE 'rss-%'")" $N "... once each"
sleep 10
after=$(rss)
diag "VmRSS idle $idle KiB, peak (VmHWM) $peak KiB, 10 s after the last reply $after KiB"
ok "[ $((after - idle)) -le 65536 ]" "10 s later lmtpd's RSS is within 64 MiB of idle ($idle -> $after KiB; peak $peak KiB)"
done_testing
