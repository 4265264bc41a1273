#!/usr/bin/env bash
# reused-address.sh - an address given to a new owner never brings the old
# owner's mail with it (issue 17, item 1; doc/SECURITY.md). A recipient row
# that once had an owner stays unlinked when the owner is removed, whoever
# owns the address next; only mail that arrived while nobody owned the
# address is linked late. Real PostgreSQL, postroomctl and postroom-deliver.
. "$(dirname "$0")/../lib/tap.sh"
. "$POSTROOM_SRCDIR/tests/lib/pg.sh"
. "$POSTROOM_SRCDIR/tests/integration/deliver-helpers.bash"
pg_start && pg_fresh_db postroom || { fail "database ready"; done_testing; }
pctl domain add example.com >/dev/null
pctl user add keeper@example.com >/dev/null

# send SUBJECT [HEADER-LINE] -- RCPT... - deliver a small message
send() {
	local subject=$1 extra=$2 f
	shift 2
	SEND_N=$((SEND_N + 1))
	f=$(msg_file "m$SEND_N.eml" <<M
From: sender@example.org
Subject: $subject
Message-ID: <m$SEND_N.$RANDOM@example.org>
$extra

body of "$subject"
M
)
	deliver_run "$f" -f sender@example.org "$@"
}
SEND_N=0

# mailbox ADDRESS - the subjects in ADDRESS's mailbox, sorted, one line
mailbox() {
	pctl --json mail list --user "$1" | jq -r '[.[].subject] | sort | join(",")'
}

# linked_rows ADDRESS - recipient rows (header rows too) linked to the user
linked_rows() {
	psqlc "SELECT count(*) FROM email_recipients r JOIN users u ON u.id = r.user_id
	        WHERE u.address = '$1'"
}

# --- mail that arrived before the address had any owner: linked late -----------
send "before any owner" "X-Case: early" -- early@example.com keeper@example.com
is "$D_RC" "0" "mail for a not yet owned address among known ones is stored"
send "before any alias" "X-Case: early" -- early.alias@example.com keeper@example.com
pctl user add early@example.com >/dev/null
is "$(mailbox early@example.com)" "before any owner" \
	"a message that arrived before any owner is linked to the first user"
pctl alias add early.alias@example.com early@example.com >/dev/null
is "$(mailbox early@example.com)" "before any alias,before any owner" \
	"... and one for an alias to the alias's first owner"

# --- a user removed, the address given to a new user ----------------------------
pctl user add old@example.com >/dev/null
send "old owner's private mail" "" -- old@example.com
is "$D_RC" "0" "mail for the first owner stored"
send "old owner only in Cc" "Cc: old@example.com" -- keeper@example.com
is "$(mailbox old@example.com)" "old owner's private mail" "the first owner has their mail"
is "$(linked_rows old@example.com)" "2" "... and a linked header row"
# kept for an audit period (--keep-mail): the rows that stay must never be
# linked to the next owner (without it the mailbox is expunged:
# ctl-mailbox.sh)
run_status 0 "user remove --keep-mail 30" pctl user remove old@example.com --keep-mail 30
is "$(cat "$TAP_TMP/out")" \
	"removed user old@example.com; their 1 messages are kept, unlinked and unreachable, for 30 days, then purged (never given to a later owner of the address)" \
	"... and says what happens to the mail"
is "$(psqlc "SELECT count(*) FROM emails WHERE subject = 'old owner''s private mail'")" "1" \
	"the removed user's mail is kept"
is "$(psqlc "SELECT count(*) FILTER (WHERE user_id IS NULL AND orphaned_at IS NOT NULL) || '/' || count(*)
              FROM email_recipients WHERE address = 'old@example.com'")" "2/2" \
	"... its rows unlinked and marked as once owned (orphaned_at)"
run_status 0 "a new user gets the same address" pctl user add old@example.com
is "$(mailbox old@example.com)" "" "the new user sees none of the old owner's mail"
is "$(linked_rows old@example.com)" "0" "... not even a header row is linked to them"
send "for the new owner" "" -- old@example.com
is "$D_RC" "0" "new mail to the reused address is delivered"
is "$(mailbox old@example.com)" "for the new owner" "... and is all the new user sees"
is "$(psqlc "SELECT count(*) FROM email_recipients WHERE address = 'old@example.com' AND user_id IS NULL")" "2" \
	"the old owner's rows stay unlinked"

# --- removed by SQL, not by postroomctl: the same ---------------------------------
pctl user add sqlgone@example.com >/dev/null
send "sqlgone's mail" "" -- sqlgone@example.com
psqlc "DELETE FROM users WHERE address = 'sqlgone@example.com'"
pctl user add sqlgone@example.com >/dev/null
is "$(mailbox sqlgone@example.com)" "" "a user deleted by SQL: the next owner sees nothing old"

# --- mail that arrived between one owner and the next: nobody had it -------------
pctl user add gap@example.com >/dev/null
send "gap first owner" "" -- gap@example.com
pctl user remove gap@example.com >/dev/null
send "gap while unowned" "" -- gap@example.com keeper@example.com
is "$D_RC" "0" "mail for the unowned address stored (with a known recipient)"
pctl user add gap@example.com >/dev/null
is "$(mailbox gap@example.com)" "gap while unowned" \
	"the next owner gets what arrived while nobody owned the address, not the first owner's"

# --- an alias removed and re-created for another user ----------------------------
pctl user add carol@example.com >/dev/null
pctl user add dave@example.com >/dev/null
pctl alias add help@example.com carol@example.com >/dev/null
send "help desk under carol" "" -- help@example.com
run_status 0 "alias remove" pctl alias remove help@example.com
run_status 0 "the alias re-created for another user" pctl alias add help@example.com dave@example.com
is "$(mailbox dave@example.com)" "" "the new alias owner sees nothing of the old one's"
is "$(mailbox carol@example.com)" "help desk under carol" "the old owner keeps it"
pctl alias add team@example.com carol@example.com >/dev/null
send "team under carol" "" -- team@example.com
is "$(pctl --json user remove carol@example.com --keep-mail 30 | jq -c .)" '{"removed":"carol@example.com","messages_kept":2,"messages":2,"keep_mail_days":30}' \
	"the alias's user removed (the alias with it); --json counts the messages kept"
run_status 0 "the alias re-created for another user" pctl alias add team@example.com dave@example.com
is "$(mailbox dave@example.com)" "" "the new alias owner sees nothing of the removed user's"
is "$(linked_rows dave@example.com)" "0" "... no row linked to them"
send "team under dave" "" -- team@example.com
send "help under dave" "" -- help@example.com
is "$(mailbox dave@example.com)" "help under dave,team under dave" \
	"new mail to both aliases reaches the new owner"

# --- the migration: unlinked rows stored before it (schema 10, before issue 17;
# db migrate applies the rest) -----------------------------------------------------
if ! ls "$POSTROOM_SRCDIR"/sql/*_address_reuse.sql >/dev/null 2>&1; then
	fail "the migration sql/NNN_address_reuse.sql exists"
	done_testing
fi
"$PG_BINDIR/psql" -qX -d postgres -c 'CREATE DATABASE old' >/dev/null
sed 's/dbname=postroom/dbname=old/' "$POSTROOM_CONF" >"$TAP_TMP/old.conf"
chmod 600 "$TAP_TMP/old.conf"
oldsql() { "$PG_BINDIR/psql" -qXAt -v ON_ERROR_STOP=1 -d old "$@"; }
oldctl() { "$POSTROOM_BUILDDIR/postroomctl" -c "$TAP_TMP/old.conf" "$@"; }
oldsql -c "CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL,
	applied_at timestamptz NOT NULL DEFAULT now())"
for f in "$POSTROOM_SRCDIR"/sql/0*.sql; do
	b=$(basename "$f" .sql)
	v=$((10#${b%%_*}))
	[ "$v" -le 10 ] || continue
	oldsql -1 -f "$f" >/dev/null && oldsql -c "INSERT INTO schema_migrations VALUES ($v, '$b')"
done
# the old schema: a removed user's row, indistinguishable from early mail
oldsql -c "INSERT INTO users (address) VALUES ('prev@example.com')" \
	-c "INSERT INTO emails (id, message_id, size_bytes, content_sha256, subject)
	    VALUES ('22222222-2222-4222-8222-222222222222', '<prev@x>', 1, sha256('prev'), 'prev owner''s')" \
	-c "INSERT INTO email_recipients (email_id, address, type, user_id, delivered)
	    SELECT '22222222-2222-4222-8222-222222222222', address, 'to', id, true FROM users" \
	-c "DELETE FROM users WHERE address = 'prev@example.com'"
is "$(oldsql -c "SELECT count(*) FROM email_recipients WHERE user_id IS NULL")" "1" \
	"old schema: the removed user's row is simply unlinked"
like "$(oldctl db migrate 2>&1)" 'applied [1-9][0-9]* migrations?; schema version' "db migrate on the old schema"
is "$(oldsql -c "SELECT orphaned_at IS NOT NULL FROM email_recipients")" "t" \
	"the migration marks every unlinked row it finds as once owned"
oldctl user add prev@example.com >/dev/null
is "$(oldsql -c "SELECT count(*) FROM email_recipients WHERE user_id IS NOT NULL")" "0" \
	"... so a user created afterwards for that address gets nothing"
done_testing
