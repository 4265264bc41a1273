#!/usr/bin/env bash
# deliver-verdict.sh - deliver stores the spam flag only from headers added
# at this hop: the topmost X-Postroom-Verdict above the first Received:
# that verifies (HMAC, this delivery's queue id, age), and
# Authentication-Results of the trusted authserv-id above the second
# Received: (Postfix puts a milter's header just below its own), stored in
# emails.auth_results; dmarc=fail under deliver.dmarc_spam_policies is
# spam. A sender who writes those headers into the message below an
# earlier hop's Received: - forged, or genuine ones copied from another
# message - gets no effect (above it, postroom-milter removes them).
. "$(dirname "$0")/../lib/tap.sh"
. "$POSTROOM_SRCDIR/tests/lib/pg.sh"
. "$POSTROOM_SRCDIR/tests/integration/deliver-helpers.bash"
pg_start && pg_fresh_db postroom || { fail "database ready"; done_testing; }
pctl domain add example.com >/dev/null
pctl user add bob@example.com >/dev/null

secret=verdict-test-secret-0123456789abcdef0123
printf 'security = { hmac_secret = "%s"; };\ndeliver = { trusted_authserv_id = "mx.example.com"; };\n' \
	"$secret" >>"$POSTROOM_CONF"
sign() { "$POSTROOM_BUILDDIR/tests/unit/deliver-sighdr-sign" "$secret" X-Postroom-Verdict "$@"; }
received='Received: from client.example.net (client.example.net [192.0.2.7])
	by mx.example.com (Postfix) with ESMTP id QID
	for <bob@example.com>; Mon, 23 Nov 2026 04:00:00 +0000 (UTC)'

# msg NAME ABOVE BELOW - a message with header block ABOVE before this hop's
# Received: line and BELOW after it (where the sender's headers are)
msg() {
	{
		[ -n "$2" ] && printf '%s\n' "$2"
		printf '%s\n' "$received"
		[ -n "$3" ] && printf '%s\n' "$3"
		printf 'From: mallory@example.net\nTo: bob@example.com\nSubject: %s\nMessage-ID: <%s@example.net>\n\nbody\n' "$1" "$1"
	} >"$TAP_TMP/$1.eml"
	echo "$TAP_TMP/$1.eml"
}
spam_of() { mail_json "$D_ID" | jq -r '"\(.spam) \(.spam_reason)"'; }

v=$(sign qid=Q1 spam=yes reason=spf=fail spf=fail)
deliver_run "$(msg v1 "X-Postroom-Verdict: $v" "")" -f m@example.net -q Q1 -- bob@example.com
is "$D_RC" 0 "delivered"
is "$(spam_of)" "true spf=fail" "this hop's verifying verdict tags spam with its reason"

deliver_run "$(msg v2 "" "X-Postroom-Verdict: $v")" -f m@example.net -q Q1 -- bob@example.com
is "$(spam_of)" "false null" "the same genuine header below Received: (written by the sender) has no effect"

deliver_run "$(msg v3 "X-Postroom-Verdict: $v" "")" -f m@example.net -q Q3 -- bob@example.com
is "$(spam_of)" "false null" "a genuine verdict copied onto another queue id has no effect"
like "$D_ERR" "verdict header ignored" "... and deliver says why"

ham=$(sign qid=Q4 spam=no reason=none spf=pass)
deliver_run "$(msg v4 "X-Postroom-Verdict: $ham
X-Postroom-Verdict: $(sign qid=Q4 spam=yes reason=dnsbl)" "")" -f m@example.net -q Q4 -- bob@example.com
is "$(spam_of)" "false null" "only the topmost verdict counts"

forged=$("$POSTROOM_BUILDDIR/tests/unit/deliver-sighdr-sign" wrong-secret-wrong-secret-wrong-secret-0 \
	X-Postroom-Verdict qid=Q5 spam=yes reason=forged)
deliver_run "$(msg v5 "X-Postroom-Verdict: $forged" "")" -f m@example.net -q Q5 -- bob@example.com
is "$(spam_of)" "false null" "a verdict signed with another secret has no effect"

stale=$("$POSTROOM_BUILDDIR/tests/unit/deliver-sighdr-sign" "$secret" X-Postroom-Verdict 8640000 qid=Q6 spam=yes reason=old)
deliver_run "$(msg v6 "X-Postroom-Verdict: $stale" "")" -f m@example.net -q Q6 -- bob@example.com
is "$(spam_of)" "false null" "a stale (replayed) verdict has no effect"

ar='Authentication-Results: mx.example.com;
	dkim=fail header.d=example.net;
	dmarc=fail (p=reject) header.from=example.net'
deliver_run "$(msg a1 "$ar" "")" -f m@example.net -q Q7 -- bob@example.com
is "$(spam_of)" "true dmarc=fail(p=reject)" "trusted Authentication-Results with dmarc=fail (p=reject) tag spam"
is "$(mail_json "$D_ID" | jq -cS .auth_results)" '{"dkim":"fail","dmarc":"fail","dmarc_from":"example.net","dmarc_policy":"reject"}' \
	"... stored in auth_results (mail show --json)"

deliver_run "$(msg a2 "${ar/mx.example.com/evil.example}" "")" -f m@example.net -q Q8 -- bob@example.com
is "$(spam_of)" "false null" "Authentication-Results of another authserv-id have no effect"

deliver_run "$(msg a3 "" "$ar")" -f m@example.net -q Q9 -- bob@example.com
is "$(spam_of)" "true dmarc=fail(p=reject)" "just below this hop's Received: (where Postfix puts a milter's header): trusted"

earlier='Received: from [192.0.2.99] by relay.example.net with ESMTP; Mon, 23 Nov 2026 03:59:00 +0000'
deliver_run "$(msg a4 "" "$earlier
$ar")" -f m@example.net -q Q11 -- bob@example.com
is "$(spam_of)" "false null" "trusted-looking Authentication-Results below an earlier hop's Received: have no effect"
is "$(mail_json "$D_ID" | jq -c .auth_results)" null "... nothing stored from them"

deliver_run "$(msg a5 "${ar/p=reject/p=none}" "")" -f m@example.net -q Q12 -- bob@example.com
is "$(spam_of)" "false null" "dmarc=fail under p=none: not spam (deliver.dmarc_spam_policies)"

deliver_run "$(msg clean "" "")" -f m@example.net -q Q10 -- bob@example.com
is "$(spam_of)" "false null" "no verdict at all: not spam"
done_testing
