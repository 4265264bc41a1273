#!/usr/bin/env bash
# mimecheck-exim.sh - a real Exim 4.96 with the DATA ACL statements of
# contrib/exim/postroom-mimecheck.acl: a message with an attachment one
# byte over limits.attachment_size_max (1024, decoded) gets 552 5.3.4 with
# the size at end of data, and nothing is queued or bounced (exim -bp
# empty, no message from <> in the main log); one at the limit is
# accepted; the check failing (no configuration) defers with 451, never
# accepts or bounces.
. "$(dirname "$0")/../lib/tap.sh"
EXIM_DOMAIN=example.com
. "$POSTROOM_SRCDIR/tests/lib/exim.sh"

CHECK="$POSTROOM_BUILDDIR/postroom-mimecheck"
[ -x "$CHECK" ] || { fail "postroom-mimecheck built"; done_testing; }
if exim_prepare; then pass "exim_prepare"; else fail "exim_prepare"; done_testing; fi
chmod 711 "$TAP_TMP"
MCONF="$TAP_TMP/mimecheck.conf"
printf 'limits = { message_size_max = 65536; attachment_size_max = 1024; };\n' >"$MCONF"
chmod 644 "$MCONF"

# the contrib statements at the top of the minimal configuration's DATA ACL
EXIM_CONF_EXTRA="POSTROOM_MIMECHECK = $CHECK -c $MCONF"
conf=$(exim_conf_minimal "$TAP_TMP/exim")
awk '/^  [a-z]/ || /^            / || /^          [a-z]/' "$POSTROOM_SRCDIR/contrib/exim/postroom-mimecheck.acl" >"$TAP_TMP/acl"
ok '[ "$(grep -c "^  [a-z]" "$TAP_TMP/acl")" = 3 ]' "contrib/exim/postroom-mimecheck.acl: three statements"
awk -v f="$TAP_TMP/acl" '{ print } /^acl_check_data:/ { while ((getline l < f) > 0) print l }' "$conf" >"$TAP_TMP/exim.conf.new"
cat "$TAP_TMP/exim.conf.new" >"$conf"
like "$(exim_run "$conf" -bV 2>&1)" 'Exim version 4\.96' "Exim accepts the configuration with the ACL"
if exim_daemon "$conf"; then pass "exim_daemon"; else fail "exim_daemon"; done_testing; fi
MAINLOG="$TAP_TMP/exim/log/mainlog"

att_msg() {	# att_msg FILE SUBJECT N: a message with an attachment of N bytes (base64)
	python3 - "$@" <<-'EOF'
	import base64, sys
	f, subj, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
	att = base64.encodebytes((b"0123456789abcdef" * (n // 16 + 1))[:n]).decode().replace("\n", "\r\n")
	open(f, "w", newline="").write(
	    "From: dave@example.org\r\nTo: alice@example.com\r\nSubject: %s\r\n"
	    "MIME-Version: 1.0\r\nContent-Type: multipart/mixed;\r\n\tboundary=\"b1\"\r\n\r\n"
	    "--b1\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n--b1\r\n"
	    "Content-Type: application/octet-stream\r\n"
	    "Content-Disposition: attachment; filename=a.bin\r\n"
	    "Content-Transfer-Encoding: base64\r\n\r\n%s--b1--\r\n" % (subj, att))
	EOF
}
send() {	# send FILE: the last reply line to the end of data
	swaks --server "127.0.0.1:$EXIM_PORT" --helo client.test --from dave@example.org \
		--to alice@example.com --data "$1" >"$TAP_TMP/swaks.out" 2>&1
	awk '/^ [-~]> / { cmd = substr($0, 5) } /^<[-~*][-~* ] / && cmd == "." { print substr($0, 5); exit }' \
		"$TAP_TMP/swaks.out"
}

att_msg "$TAP_TMP/over.eml" att-over 1025
att_msg "$TAP_TMP/limit.eml" att-limit 1024
r=$(send "$TAP_TMP/over.eml")
is "$r" "552 5.3.4 attachment of 1025 bytes exceeds the limit of 1024 bytes" \
	"an attachment 1 byte over attachment_size_max: 552 5.3.4 at end of data"
r=$(send "$TAP_TMP/limit.eml")
like "$r" '^250 ' "an attachment of exactly attachment_size_max: accepted ($r)"
for i in $(seq 50); do [ -z "$(exim_run "$conf" -bp 2>/dev/null)" ] && break; sleep 0.1; done
is "$(exim_run "$conf" -bp 2>&1)" "" "nothing in Exim's queue (exim -bp empty)"
like "$(cat "$MAINLOG")" 'rejected after DATA: 552 5.3.4 attachment of 1025 bytes' \
	"Exim logged the refusal after DATA"
unlike "$(cat "$MAINLOG")" ' <= <> ' "no bounce message (from <>) in the main log"
is "$(grep -c ' <= dave@example.org' "$MAINLOG")" 1 "only the message at the limit was received"

# the check cannot run (no configuration): 451, not accepted, not refused
mv "$MCONF" "$MCONF.away"
r=$(send "$TAP_TMP/over.eml")
like "$r" '^451 4\.3\.0 ' "the check failing: 451 4.3.0 ($r)"
like "$(cat "$MAINLOG")" 'postroom-mimecheck failed: 78 ' "... logged with the exit status"
mv "$MCONF.away" "$MCONF"
done_testing
