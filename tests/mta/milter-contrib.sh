#!/usr/bin/env bash
# milter-contrib.sh - the Postfix fragments in contrib/postfix are what
# Postfix 3.7 accepts: main.cf lines without a warning from postconf,
# master.cf services parsed with their options, the header checks strip
# postroom's internal headers and nothing else (postmap -c "$d" -q), the transport
# map routes the sent copy.
. "$(dirname "$0")/../lib/tap.sh"

C="$POSTROOM_SRCDIR/contrib/postfix"
d="$TAP_TMP/etc"
mkdir -p "$d"
cp "$C/main.cf.postroom" "$d/main.cf"
# master.cf: Postfix's own services plus ours
postconf -c "$d" -M 2>/dev/null | grep -v '^\(smtp\|submission\|submissions\)[[:space:]]*inet' >"$d/master.cf"
[ -s "$d/master.cf" ] || cp /usr/share/postfix/master.cf.dist "$d/master.cf" 2>/dev/null
cat "$C/master.cf.postroom" >>"$d/master.cf"

out=$(postconf -c "$d" -n 2>&1)
unlike "$out" 'warning' "main.cf.postroom: postconf prints no warning"
like "$out" '^smtpd_milters = unix:/postroom/milter.sock' "main.cf.postroom: smtpd_milters set"
like "$(postconf -c "$d" -h milter_default_action)" '^tempfail$' "milter_default_action = tempfail"
m=$(postconf -c "$d" -M 2>&1)
unlike "$m" 'warning|fatal' "master.cf.postroom: postconf -M parses it"
for s in 'smtp +inet' 'submission +inet .*smtpd_tls_security_level=encrypt.*milter_macro_daemon_name=ORIGINATING' \
	'submissions +inet .*smtpd_tls_wrappermode=yes.*milter_macro_daemon_name=ORIGINATING' \
	'postroom +unix .*pipe .*postroom-deliver ' 'postroom-sent +unix .*pipe .*postroom-deliver --sent '; do
	like "$m" "$s" "master.cf.postroom: ${s%% *} service"
done
# every setting comes right after the comment explaining it
n=$(awk '/^[^#[:space:]]/ && prev !~ /^#/ { bad++; print "#   " $0 > "/dev/stderr" } { prev = $0 } END { print bad + 0 }' "$C/main.cf.postroom")
is "$n" 0 "main.cf.postroom: every setting follows its comment"
n=$(awk '(/^[^#[:space:]]/ || /^[[:space:]]+-o /) && prev !~ /^[[:space:]]*#/ { bad++; print "#   " $0 > "/dev/stderr" } { prev = $0 } END { print bad + 0 }' "$C/master.cf.postroom")
is "$n" 0 "master.cf.postroom: every service and -o option follows its comment"

hc="regexp:$C/postroom_header_checks"
is "$(postmap -c "$d" -q 'X-Postroom-Submission: v=1; user=a@b' "$hc")" IGNORE "header checks: X-Postroom-Submission stripped"
is "$(postmap -c "$d" -q 'x-postroom-verdict: v=1; spam=no' "$hc")" IGNORE "header checks: X-Postroom-Verdict stripped (any case)"
is "$(postmap -c "$d" -q 'Subject: X-Postroom-Submission: v=1' "$hc")" "" "header checks: other headers untouched"
is "$(postmap -c "$d" -q 'X-Postroom-Other: 1' "$hc")" "" "header checks: only the two internal headers"
is "$(postmap -c "$d" -q postroom.invalid "inline:{$(grep -v '^#' "$C/postroom_transport" | awk 'NF { printf "%s=%s", $1, $2 }')}")" \
	"postroom-sent:" "transport map: postroom.invalid goes to postroom-sent"
done_testing
