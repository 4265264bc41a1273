#!/usr/bin/env bash
# mail-class.sh - lib/mail_class (issue 21) on the RFCs' examples and on
# the corpus, through tests/tools/mail-class-tool (no database):
# - the RFC 3464 DSNs (simple: a failed 4.0.0 is a soft bounce; the
#   multi-recipient one: hard, with each recipient's status and the
#   returned Message-Id; a delayed DSN: delay), the RFC 5965 ARF example
#   (complaint, Original-Rcpt-To), an RFC 3834 auto-reply (In-Reply-To is
#   the original), a vacation reply with Precedence: bulk, a qmail
#   "failure notice" (non-standard: null sender, subject, #5.1.1);
# - what must stay ordinary: a mailing-list message with Auto-Submitted,
#   a bulk newsletter, a human's mail from postmaster@ that talks about
#   5.1.1; and, with a known non-null envelope sender, the qmail bounce;
# - over the corpus (tests/corpus/MANIFEST.tsv): the classification table
#   (printed as "# CLASS COUNT"), no message with List-Id classified as an
#   auto-reply, every sisimai RFC 3464 sample a bounce, and the sisimai
#   "is-not-bounce" samples ordinary.
. "$(dirname "$0")/../lib/tap.sh"
TOOL="$POSTROOM_BUILDDIR/tests/tools/mail-class-tool"
G="$POSTROOM_SRCDIR/tests/golden/mail-class"
corpus="$POSTROOM_SRCDIR/tests/corpus"
[ -x "$TOOL" ] || make -C "$POSTROOM_BUILDDIR" tests/tools/mail-class-tool >/dev/null 2>&1
[ -x "$TOOL" ] || { fail "mail-class-tool built"; done_testing; }

# field FILE N [SENDER...] - field N of the tool's line for FILE
field() {
	local f=$1 n=$2
	shift 2
	"$TOOL" "$@" "$G/$f" | cut -f"$n"
}

is "$(field rfc3464-simple.eml 2)" bounce-soft "RFC 3464 simple DSN (failed, 4.0.0): bounce-soft"
is "$(field rfc3464-simple.eml 5)" "louis@larry.slip.umd.edu/failed/4.0.0/soft" \
	"RFC 3464 simple DSN: the recipient, action and status"
is "$(field rfc3464-multi.eml 2)" bounce-hard "RFC 3464 multi-recipient DSN: bounce-hard"
is "$(field rfc3464-multi.eml 5)" \
	"arathib@vnet.ibm.com/failed/5.0.0/hard johnh@hpnjld.njd.hp.com/delayed/4.0.0/delay wsnell@sdcc13.ucsd.edu/failed/5.0.0/hard" \
	"RFC 3464 multi-recipient DSN: each recipient's action, status and kind"
is "$(field rfc3464-multi.eml 4)" original.4711@cs.utk.edu "the returned message's Message-Id"
is "$(field rfc3464-delay.eml 2)" delay "a delayed DSN (Action: delayed): delay"
is "$(field rfc3464-delay.eml 4)" delayed.1@example.org "Message-Id from text/rfc822-headers"
is "$(field rfc5965-arf.eml 2)" complaint "RFC 5965 ARF example: complaint"
is "$(field rfc5965-arf.eml 5)" "user@example.com/-/-/other" "ARF: Original-Rcpt-To is the recipient"
is "$(field rfc3834-autoreply.eml 2)" auto-reply "RFC 3834 Auto-Submitted: auto-replied: auto-reply"
is "$(field rfc3834-autoreply.eml 4)" meeting.42@example.org "auto-reply: In-Reply-To is the original"
is "$(field vacation-precedence.eml 2)" auto-reply "Precedence: bulk with an automatic-reply subject"
is "$(field qmail-failure.eml 2)" bounce-hard "qmail failure notice (null sender, #5.1.1): bounce-hard"
is "$(field qmail-failure.eml 5)" "nobody@remote.example/-/5.1.1/hard" "qmail: the <address>: line"
is "$(field qmail-failure.eml 4)" sent.77@example.org "qmail: the quoted copy's Message-ID"
is "$(field qmail-failure.eml 2 -s bob@example.org)" ordinary \
	"non-standard rules: a known non-null envelope sender is never a bounce"
is "$(field qmail-failure.eml 2 -s '')" bounce-hard "...and the null envelope sender is one"
is "$(field list-autosubmitted.eml 2)" ordinary "mailing list with Auto-Submitted: never an auto-reply"
is "$(field newsletter-bulk.eml 2)" ordinary "Precedence: bulk alone: ordinary"
is "$(field ordinary-question.eml 2)" ordinary "postmaster@ asking about 5.1.1: ordinary"

# the corpus
tr '\n' '\0' < <(awk -F'\t' -v c="$corpus" 'NR > 1 { print c "/" $1 }' "$corpus/MANIFEST.tsv") |
	xargs -0 "$TOOL" >"$TAP_TMP/corpus.tsv"
rc=$?
is "$rc" 0 "every corpus message classified (tool exit status)"
n=$(wc -l <"$TAP_TMP/corpus.tsv")
total=$(($(wc -l <"$corpus/MANIFEST.tsv") - 1))
is "$n" "$total" "one line per corpus message"
cut -f2 "$TAP_TMP/corpus.tsv" | sort | uniq -c | awk '{ print "# " $2 " " $1 }'
list_auto=0
while IFS=$'\t' read -r f cls _; do
	[ "$cls" = auto-reply ] && grep -qi '^list-id:' "$f" && list_auto=$((list_auto + 1))
done <"$TAP_TMP/corpus.tsv"
is "$list_auto" 0 "no corpus message with List-Id is an auto-reply"
like "$(grep '/rfc3464-01.eml' "$TAP_TMP/corpus.tsv" | cut -f2 | sort -u | tr '\n' ' ')" '^bounce-hard $' \
	"sisimai's RFC 3464 samples: bounce-hard"
is "$(grep '/is-not-bounce-' "$TAP_TMP/corpus.tsv" | cut -f2 | sort -u)" ordinary \
	"sisimai's is-not-bounce samples: ordinary"
bounces=$(cut -f2 "$TAP_TMP/corpus.tsv" | grep -c '^bounce-')
ok "[ $bounces -ge 50 ]" "at least 50 corpus bounces found ($bounces)"
done_testing
