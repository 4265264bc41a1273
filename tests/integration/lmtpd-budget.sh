#!/usr/bin/env bash
# lmtpd-budget.sh - postroom-lmtpd's memory budget (lmtpd.memory_budget,
# lmtpd.memory_wait; issue 16 item 2): with a budget of 4 MiB, two
# messages of 600 KB declared by SIZE= (5 x size + 256 KiB each: 3.3 MB)
# do not fit together: the second DATA waits for the first to finish, then
# both are stored once; with a session holding its charge in DATA and
# memory_wait = 1, the other DATA gets 451 4.3.2 and stores nothing; a
# message without SIZE= whose charge cannot grow gets its data discarded
# and 451 4.3.2 for every recipient; a message larger than the whole
# budget is delivered when it is alone; the charge is back to 0 after all.
. "$(dirname "$0")/../lib/tap.sh"
. "$POSTROOM_SRCDIR/tests/lib/pg.sh"
. "$POSTROOM_SRCDIR/tests/integration/lmtpd-helpers.bash"
pg_start && pg_fresh_db postroom || { fail "database ready"; done_testing; }
pctl user add alice@example.com >/dev/null
pctl user add bob@example.com >/dev/null
count() { psqlc "SELECT count(*) FROM emails WHERE message_id = '$1@example.org'"; }
# big ID BYTES - a message of about BYTES (CRLF, nothing to dot-stuff)
big() {
	{
		printf 'From: dave@example.org\r\nTo: alice@example.com\r\nSubject: %s\r\nMessage-ID: <%s@example.org>\r\n\r\n' "$1" "$1"
		yes 'budget filler line of seventy-five bytes ......................... xyz' |
			head -n $(($2 / 75)) | sed 's/$/\r/'
	} >"$TAP_TMP/$1.eml"
	echo "$TAP_TMP/$1.eml"
}
# tx_script OUT ID SIZE FILE [STEPS BEFORE THE DATA] - one transaction
tx_script() {
	local out=$1 id=$2 size=$3 f=$4 pre=${5:-}
	{
		echo "R"
		echo "S LHLO c"
		echo "R"
		[ -n "$size" ] && echo "S MAIL FROM:<dave@example.org> SIZE=$size" || echo "S MAIL FROM:<dave@example.org>"
		echo "R"
		echo "S RCPT TO:<alice@example.com>"
		echo "R"
		echo "S RCPT TO:<bob@example.com>"
		echo "R"
		echo "X date +%s.%N >$TAP_TMP/$id.data-sent"
		echo "S DATA"
		echo "R"
		echo "X date +%s.%N >$TAP_TMP/$id.data-answered"
		[ -n "$pre" ] && printf '%s\n' "$pre"
		echo "F $f"
		echo "S ."
		echo "R"
		echo "R"
		echo "X date +%s.%N >$TAP_TMP/$id.done"
		echo "S QUIT"
	} >"$out"
}
elapsed() { echo "$(cat "$2") - $(cat "$1")" | bc; }

LMTPD_EXTRA='memory_budget = 4194304; memory_wait = 20;' lmtpd_start "$TAP_TMP/l1" ||
	{ fail "lmtpd started with lmtpd.memory_budget and lmtpd.memory_wait"; done_testing; }
pass "lmtpd started with lmtpd.memory_budget and lmtpd.memory_wait"
S=$LMTPD_SOCKET

# --- two messages over the budget: the second DATA waits ------------------------
fa=$(big w1 600000)
fb=$(big w2 600000)
tx_script "$TAP_TMP/a.script" w1 600000 "$fa" "X touch $TAP_TMP/w1.in-data
Z 2"
tx_script "$TAP_TMP/b.script" w2 600000 "$fb"
sed -i "1i W $TAP_TMP/w1.in-data" "$TAP_TMP/b.script"
lmtp "$S" "$TAP_TMP/a.script" >"$TAP_TMP/a.out" &
pa=$!
lmtp "$S" "$TAP_TMP/b.script" >"$TAP_TMP/b.out" &
pb=$!
wait $pa $pb
is "$(grep -c 'Ok: stored' "$TAP_TMP/a.out") $(grep -c 'Ok: stored' "$TAP_TMP/b.out")" "2 2" \
	"two messages of 600 KB over a 4 MiB budget: both delivered to both recipients"
is "$(count w1) $(count w2)" "1 1" "... each stored once"
waited=$(elapsed "$TAP_TMP/w2.data-sent" "$TAP_TMP/w2.data-answered")
ok "[ \$(echo '$waited > 1.5' | bc) = 1 ]" "... the second DATA waited for the first (${waited} s for its 354)"
ok "[ \$(echo '$(cat "$TAP_TMP/w2.data-answered") >= $(cat "$TAP_TMP/w1.data-answered") + 2' | bc) = 1 ]" \
	"... until the first had sent its data"
ok "[ \"\$(lmtpd_metric postroom_lmtpd_memory_waits_total)\" -ge 1 ]" "postroom_lmtpd_memory_waits_total counts it"

# --- alone, a message larger than the whole budget ------------------------------
fc=$(big alone 1000000)
tx_script "$TAP_TMP/c.script" alone 1000000 "$fc"
out=$(lmtp "$S" "$TAP_TMP/c.script")
is "$(grep -c 'Ok: stored' <<<"$out")" 2 "alone, a message of 1 MB (charge 5.3 MB) over a budget of 4 MiB is delivered"
tx_script "$TAP_TMP/d.script" alone2 "" "$(big alone2 1000000)"
out=$(lmtp "$S" "$TAP_TMP/d.script")
is "$(grep -c 'Ok: stored' <<<"$out")" 2 "... and without SIZE= (its charge grows alone)"
is "$(lmtpd_metric postroom_lmtpd_memory_charged_bytes)" 0 "nothing charged once every message is done"
lmtpd_stop "$LMTPD_PID"

# --- a session holds its charge; memory_wait = 1 ---------------------------------
LMTPD_EXTRA='memory_budget = 4194304; memory_wait = 1;' lmtpd_start "$TAP_TMP/l2" ||
	{ fail "lmtpd started (memory_wait = 1)"; done_testing; }
S=$LMTPD_SOCKET
fh=$(big holder 600000)
tx_script "$TAP_TMP/h.script" holder 600000 "$fh" "X touch $TAP_TMP/holder.in-data
W $TAP_TMP/release"
lmtp "$S" "$TAP_TMP/h.script" >"$TAP_TMP/h.out" &
ph=$!
for i in $(seq 100); do [ -e "$TAP_TMP/holder.in-data" ] && break; sleep 0.1; done
fr=$(big refused 600000)
cat >"$TAP_TMP/r.script" <<S
R
S LHLO c
R
S MAIL FROM:<dave@example.org> SIZE=600000
R
S RCPT TO:<alice@example.com>
R
S DATA
R
S QUIT
S
out=$(lmtp "$S" "$TAP_TMP/r.script")
like "$out" "451 4.3.2 " "a session holds its charge in DATA, memory_wait = 1: the other DATA gets 451 4.3.2"
unlike "$out" "^354" "... without a 354 (no data is sent)"
# without SIZE= the charge starts small and cannot grow: data read, discarded
fg=$(big grown 300000)
tx_script "$TAP_TMP/g.script" grown "" "$fg"
out=$(lmtp "$S" "$TAP_TMP/g.script")
is "$(grep -c '^451 4.3.2 ' <<<"$out")" 2 "a message without SIZE= whose charge cannot grow: 451 4.3.2 for each recipient after its data"
is "$(lmtpd_metric postroom_lmtpd_memory_charged_bytes)" 3262144 \
	"... the refused ones hold nothing: the holder's charge alone (5 x 600,000 + 256 KiB)"
touch "$TAP_TMP/release"
wait $ph
is "$(grep -c 'Ok: stored' "$TAP_TMP/h.out")" 2 "the holder is delivered when it sends its data"
is "$(count holder) $(count refused) $(count grown)" "1 0 0" "... stored once; the refused ones stored nothing"
ok "[ \"\$(lmtpd_metric postroom_lmtpd_memory_refused_total)\" -ge 2 ]" "postroom_lmtpd_memory_refused_total counts both"
is "$(lmtpd_metric postroom_lmtpd_memory_charged_bytes)" 0 "nothing charged at the end"
kill -0 "$LMTPD_PID" 2>/dev/null && pass "lmtpd still running" || fail "lmtpd still running"
done_testing
