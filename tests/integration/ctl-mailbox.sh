#!/usr/bin/env bash
# ctl-mailbox.sh - postroomctl's side of the mailbox lifecycle (issue 18):
# mail mark|trash|restore|delete|empty-trash, hold, retention, mail purge,
# user remove [--keep-mail], the per-user state in --json. Real PostgreSQL
# and postroomctl; mail made by SQL (emails stored N days ago; the 015
# triggers make the memberships as for delivered mail).
#
# The purge: retention (the user's over the domain's), the trash period,
# flagged mail and legal hold exempt, removed users' kept mail after its
# days; --dry-run counts what the real run then does; a purge killed with
# SIGKILL in the middle and run again ends in the same state as one run
# through on a copy of the database.
. "$(dirname "$0")/../lib/tap.sh"
. "$POSTROOM_SRCDIR/tests/lib/pg.sh"
pg_start && pg_fresh_db postroom || { fail "database ready"; done_testing; }

pctl domain add example.com >/dev/null 2>&1
pctl domain add other.org >/dev/null 2>&1
for u in alice bob carol dave; do pctl user add $u@example.com >/dev/null; done
pctl user add erin@other.org >/dev/null
pctl alias add al@example.com alice@example.com >/dev/null

# t_mail(subject, days ago, recipients, size): an email stored days ago,
# delivered to the recipients (linked to their owners, as deliver does)
psqlc "CREATE FUNCTION t_mail(p_subject text, p_days int, p_rcpts text[], p_size int DEFAULT 1000)
RETURNS uuid LANGUAGE plpgsql AS \$\$
DECLARE
    i uuid := gen_random_uuid();
BEGIN
    INSERT INTO emails (id, message_id, size_bytes, content_sha256, subject, received_at)
    VALUES (i, '<' || i || '@t>', p_size, sha256(i::text::bytea), p_subject,
            now() - make_interval(days => p_days));
    INSERT INTO email_raw (email_id, content) VALUES (i, convert_to(p_subject, 'UTF8'));
    INSERT INTO email_recipients (email_id, address, type, delivered, user_id)
    SELECT i, x, 'to', true, (SELECT a.user_id FROM user_addresses a WHERE a.address = lower(x))
      FROM unnest(p_rcpts) x;
    RETURN i;
END \$\$;" >/dev/null
mail() { psqlc "SELECT t_mail('$1', $2, ARRAY[$3]::text[]${4:+, $4})"; }
# state ID ADDRESS FIELD - a field of the user's state of the email
state() { pctl --json mail show "$1" --user "$2" | jq -r ".state.$3"; }
exists() { psqlc "SELECT count(*) FROM emails WHERE id = '$1'"; }
members() { psqlc "SELECT count(*) FROM mailbox_entries WHERE email_id = '$1'"; }

# --- mark, trash, restore, delete: several ids per call ----------------------
m1=$(mail "one" 1 "'alice@example.com'")
m2=$(mail "two" 1 "'alice@example.com', 'bob@example.com'")
m3=$(mail "three" 1 "'bob@example.com'")
is "$(members "$m2")" "2" "a delivered email is in each recipient's mailbox (015 triggers)"
ms0=$(state "$m1" alice@example.com modseq)
run_status 0 "mail mark two ids --user" pctl mail mark "$m1" "$m2" --user alice@example.com
like "$(cat "$TAP_TMP/out")" "2 of 2 emails marked read" "... reports 2 of 2 marked read"
is "$(state "$m1" alice@example.com is_read)/$(state "$m2" alice@example.com is_read)" "true/true" \
	"both are read for alice"
is "$(state "$m2" bob@example.com is_read)" "false" "... and still unread for bob (state per user)"
ok "[ '$(state "$m1" alice@example.com modseq)' -gt '$ms0' ]" "the change raised alice's modseq"
run_status 0 "mark --unread by an alias" pctl mail mark "$m1" --user AL@example.com --unread
is "$(state "$m1" alice@example.com is_read)" "false" "... unread again"
run_status 0 "mark --flag" pctl mail mark "$m1" --user alice@example.com --flag
is "$(state "$m1" alice@example.com is_flagged)" "true" "... flagged"
run_status 0 "mark --unflag" pctl mail mark "$m1" --user alice@example.com --unflag
is "$(state "$m1" alice@example.com is_flagged)" "false" "... unflagged"
json=$(pctl --json mail list --user alice@example.com)
is "$(echo "$json" | jq -r '[.[].state | has("is_read") and has("is_flagged") and has("trashed") and has("modseq")] | all')" \
	"true" "mail list --json --user: every email has its state (read, flagged, trashed, modseq)"
is "$(pctl --json mail show "$m1" | jq -r 'has("state")')" "false" "mail show without --user: no state"
is "$(pctl --json mail show "$m3" --user alice@example.com | jq -r '.state')" "null" \
	"mail show --user of an email not in the mailbox: state null"

run_status 64 "a bad uuid exits 64" pctl mail mark not-a-uuid --user alice@example.com
like "$(cat "$TAP_TMP/err")" "invalid email id 'not-a-uuid'" "... naming it"
run_status 64 "a bad uuid among good ones changes nothing" pctl mail trash "$m1" 123 --user alice@example.com
is "$(state "$m1" alice@example.com trashed)" "false" "... (not trashed)"
run_status 1 "an unknown user exits 1" pctl mail mark "$m1" --user nobody@example.com
like "$(cat "$TAP_TMP/err")" "no such user: nobody@example.com" "... naming the user"
run_status 64 "--user missing exits 64" pctl mail mark "$m1"
run_status 64 "an unknown option exits 64" pctl mail mark "$m1" --user alice@example.com --bold
run_status 64 "two flags exit 64" pctl mail mark "$m1" --user alice@example.com --flag --unread
run_status 1 "an email not in the mailbox exits 1" pctl mail mark "$m1" "$m3" --user alice@example.com
like "$(cat "$TAP_TMP/err")" "not in the mailbox of alice@example.com: $m3" "... naming it"
is "$(state "$m1" alice@example.com is_read)" "true" "... and the other is marked all the same"

run_status 0 "mail trash" pctl mail trash "$m1" "$m2" --user alice@example.com
is "$(state "$m2" alice@example.com trashed)" "true" "trashed for alice"
is "$(state "$m2" bob@example.com trashed)" "false" "... not for bob"
run_status 0 "mail restore" pctl mail restore "$m2" --user alice@example.com
is "$(state "$m2" alice@example.com trashed)/$(state "$m2" alice@example.com deleted_at)" "false/null" \
	"restored"
run_status 0 "mail delete of a shared email" pctl mail delete "$m2" --user alice@example.com
is "$(exists "$m2")/$(members "$m2")" "1/1" "... ends alice's membership, the email stays for bob"
is "$(psqlc "SELECT count(*) FROM mailbox_tombstones WHERE email_id = '$m2'")" "1" "... a tombstone for alice"
run_status 0 "mail delete by its last member" pctl mail delete "$m2" --user bob@example.com
is "$(exists "$m2")" "0" "... expunges it"
is "$(psqlc "SELECT count(*) FROM email_raw WHERE email_id = '$m2'")" "0" "... with its raw message"
run_status 0 "mail empty-trash" pctl mail empty-trash --user alice@example.com
like "$(cat "$TAP_TMP/out")" "1 email deleted" "... deletes the one trashed email ($m1)"
is "$(exists "$m1")" "0" "... expunged"
run_status 64 "empty-trash without --user exits 64" pctl mail empty-trash

# --- legal hold ----------------------------------------------------------------
h1=$(mail "held" 1 "'bob@example.com'")
run_status 0 "hold set ADDRESS on" pctl hold set bob@example.com on
run_status 1 "delete under hold exits 1" pctl mail delete "$h1" --user bob@example.com
like "$(cat "$TAP_TMP/err")" "legal hold" "... saying legal hold"
is "$(exists "$h1")/$(members "$h1")" "1/1" "... nothing deleted"
pctl mail trash "$h1" --user bob@example.com >/dev/null
run_status 1 "empty-trash under hold exits 1" pctl mail empty-trash --user bob@example.com
is "$(members "$h1")" "1" "... nothing deleted"
run_status 1 "user remove under hold exits 1" pctl user remove bob@example.com
like "$(cat "$TAP_TMP/err")" "legal hold" "... saying legal hold"
is "$(psqlc "SELECT count(*) FROM users WHERE address = 'bob@example.com'")" "1" "... the user stays"
is "$(pctl hold show)" "user	bob@example.com" "hold show lists the held user"
is "$(pctl --json user list | jq -c '[.[] | select(.legal_hold) | .address]')" '["bob@example.com"]' \
	"user list --json shows the legal hold"
run_status 0 "hold set ADDRESS off" pctl hold set bob@example.com off
run_status 0 "hold set DOMAIN on" pctl hold set Example.COM. on
is "$(pctl --json hold show | jq -c .)" '{"domains":["example.com"],"users":[]}' "hold show --json"
is "$(pctl --json domain list | jq -c '[.[] | select(.legal_hold) | .name]')" '["example.com"]' \
	"domain list --json shows the legal hold"
run_status 1 "delete under the domain's hold exits 1" pctl mail delete "$h1" --user bob@example.com
pctl hold set example.com off >/dev/null
is "$(pctl hold show)" "no domain or user is under legal hold" "hold show with nothing held"
run_status 64 "hold set with a bad value exits 64" pctl hold set example.com maybe
run_status 1 "hold set for an unknown domain exits 1" pctl hold set nowhere.test on
run_status 1 "hold set for an unknown user exits 1" pctl hold set nobody@example.com on
run_status 0 "delete after the hold is lifted" pctl mail delete "$h1" --user bob@example.com
is "$(exists "$h1")" "0" "... expunged"

# --- retention -------------------------------------------------------------------
run_status 0 "retention set DOMAIN" pctl retention set example.com 30
run_status 0 "retention set ADDRESS" pctl retention set alice@example.com 10
run_status 0 "retention set ADDRESS none" pctl retention set carol@example.com none
is "$(pctl --json retention show alice@example.com | jq -c '[.retention_days, .domain_retention_days, .effective_retention_days, .trash_retention_days]')" \
	"[10,30,10,30]" "retention show ADDRESS: own, domain's, effective, trash"
is "$(pctl --json retention show carol@example.com | jq -c '[.retention_days, .effective_retention_days]')" \
	"[null,30]" "... a user without their own period has the domain's"
is "$(pctl retention show | head -n 2 | tr '\t' ' ')" "domain example.com 30 days
user alice@example.com 10 days" "retention show lists the periods"
is "$(pctl --json domain list | jq -c '[.[] | .retention_days]')/$(pctl --json user list | jq -c '[.[] | .retention_days]')" \
	"[30,null]/[10,null,null,null,null]" "domain list and user list --json show the periods"
run_status 64 "retention set with 0 days exits 64" pctl retention set example.com 0
run_status 64 "retention set with a word exits 64" pctl retention set example.com forever
run_status 1 "retention set for an unknown domain exits 1" pctl retention set nowhere.test 5

# --- purge: what goes and what stays -----------------------------------------------
# alice 10 days (her own), bob and carol 30 (the domain's), dave held, erin
# (other.org) none. g_* must go, k_* must stay.
g_old=$(mail "alice 20 days" 20 "'alice@example.com'" 1111)
k_new=$(mail "alice 5 days" 5 "'alice@example.com'")
k_flag=$(mail "alice flagged 20 days" 20 "'alice@example.com'")
pctl mail mark "$k_flag" --user alice@example.com --flag >/dev/null
g_trash=$(mail "alice trashed 40 days ago" 2 "'alice@example.com'" 2222)
k_trash=$(mail "alice trashed 5 days ago" 2 "'alice@example.com'")
pctl mail trash "$g_trash" "$k_trash" --user alice@example.com >/dev/null
psqlc "UPDATE mailbox_entries SET deleted_at = now() - interval '40 days' WHERE email_id = '$g_trash';
       UPDATE mailbox_entries SET deleted_at = now() - interval '5 days' WHERE email_id = '$k_trash'" >/dev/null
k_shared=$(mail "alice and erin 20 days" 20 "'alice@example.com', 'erin@other.org'")
k_bob=$(mail "bob 20 days" 20 "'bob@example.com'")
g_bob=$(mail "bob 40 days" 40 "'bob@example.com'" 3333)
k_dave=$(mail "dave held 40 days" 40 "'dave@example.com'")
pctl hold set dave@example.com on >/dev/null
k_erin=$(mail "erin 400 days" 400 "'erin@other.org'")
psqlc "INSERT INTO mailbox_tombstones (user_id, email_id, modseq, destroyed_at)
       SELECT id, gen_random_uuid(), 1, now() - interval '31 days' FROM users WHERE address = 'carol@example.com';
       INSERT INTO mailbox_tombstones (user_id, email_id, modseq, destroyed_at)
       SELECT id, gen_random_uuid(), 2, now() - interval '29 days' FROM users WHERE address = 'carol@example.com'" >/dev/null

run_status 0 "mail purge --dry-run" pctl --json mail purge --dry-run
dry=$(jq -c '[.emails, .memberships, .bytes, .tombstones]' "$TAP_TMP/out")
is "$dry" "[3,4,6666,1]" "dry run: 3 emails (6666 bytes), 4 memberships (alice's share of the shared one), 1 tombstone"
is "$(psqlc "SELECT count(*) FROM emails WHERE id IN ('$g_old', '$g_trash', '$g_bob')")" "3" "... and nothing changed"
deltas=$(psqlc "SELECT count(*) FROM storage_usage_delta")
ok "[ '$deltas' -gt 0 ]" "storage usage deltas wait to be folded before the purge ($deltas)"
run_status 0 "mail purge --batch 2" pctl --json mail purge --batch 2
ok "[ '$(jq .usage_deltas_folded "$TAP_TMP/out")' -ge '$deltas' ]" "the purge folded the storage usage deltas"
is "$(psqlc "SELECT count(*) FROM storage_usage_delta")" "0" "... none is left"
real=$(jq -c '[.emails, .memberships, .bytes, .tombstones]' "$TAP_TMP/out")
is "$real" "$dry" "the real run did what the dry run counted"
ok "[ '$(jq .batches "$TAP_TMP/out")' -ge 2 ]" "... in several batches of at most 2"
is "$(psqlc "SELECT count(*) FROM emails WHERE id IN ('$g_old', '$g_trash', '$g_bob')")" "0" \
	"past retention (alice 10 days, bob the domain's 30) and trashed > 30 days: expunged"
is "$(psqlc "SELECT count(*) FROM emails WHERE id IN ('$k_new', '$k_flag', '$k_trash', '$k_shared', '$k_bob', '$k_dave', '$k_erin')")" "7" \
	"recent, flagged, recently trashed, held, no retention: kept"
is "$(members "$k_shared")/$(state "$k_shared" erin@other.org is_read)" "1/false" \
	"the shared email lost alice's membership only (erin's domain has no period)"
is "$(psqlc "SELECT count(*) FROM mailbox_tombstones WHERE destroyed_at < now() - interval '30 days'")" "0" \
	"tombstones older than 30 days removed"
is "$(psqlc "SELECT count(*) FROM mailbox_tombstones WHERE destroyed_at > now() - interval '30 days' AND destroyed_at < now() - interval '1 day'")" "1" \
	"a younger one kept"
run_status 0 "a second purge" pctl mail purge
is "$(cat "$TAP_TMP/out")" "purged 0 emails, 0 memberships, 0 bytes freed" "... finds nothing"
pctl hold set dave@example.com off >/dev/null
run_status 64 "purge --batch 0 exits 64" pctl mail purge --batch 0
run_status 64 "purge with an unknown option exits 64" pctl mail purge --now
run_status 64 "purge --pause with a bad value exits 64" pctl mail purge --pause -1
run_status 64 "purge --pause with a word other than auto exits 64" pctl mail purge --pause soon
run_status 0 "purge --pause auto (the default) is accepted" pctl mail purge --dry-run --pause auto

# --- purge killed (SIGKILL) in the middle, run again: the same end state ----------
psqlc "INSERT INTO emails (id, message_id, size_bytes, content_sha256, subject, received_at)
       SELECT i, '<' || i || '@bulk>', 500, sha256(i::text::bytea), 'bulk', now() - interval '60 days'
         FROM (SELECT gen_random_uuid() AS i FROM generate_series(1, 600)) g;
       INSERT INTO email_recipients (email_id, address, type, delivered, user_id)
       SELECT e.id, u.address, 'to', true, u.id FROM emails e
         JOIN users u ON u.address IN ('bob@example.com', 'carol@example.com')
        WHERE e.subject = 'bulk'" >/dev/null
is "$(psqlc "SELECT count(*) FROM mailbox_entries m JOIN emails e ON e.id = m.email_id WHERE e.subject = 'bulk'")" \
	"1200" "600 old emails, each in two mailboxes"
# fingerprint: the emails, the memberships and their state, the tombstones' (user, email)
fingerprint() {
	"$PG_BINDIR/psql" -qXAt -d "$1" -c "SELECT md5(string_agg(x, ',' ORDER BY x)) FROM (
		SELECT 'e' || id FROM emails UNION ALL
		SELECT 'm' || user_id || email_id || is_read || is_flagged || COALESCE(deleted_at::text, '') FROM mailbox_entries UNION ALL
		SELECT 't' || user_id || email_id FROM mailbox_tombstones) s(x)"
}
"$PG_BINDIR/psql" -qX -d postgres -c "CREATE DATABASE copy TEMPLATE postroom" >/dev/null
before=$(fingerprint postroom)
is "$(fingerprint copy)" "$before" "a copy of the database for the uninterrupted run"
# the binary itself in the background (a shell function there would be a
# subshell, and SIGKILL would leave postroomctl running)
"$POSTROOM_BUILDDIR/postroomctl" -c "$POSTROOM_CONF" mail purge --batch 20 >/dev/null 2>&1 &
pid=$!
for _ in $(seq 300); do
	[ "$(psqlc "SELECT count(*) FROM emails WHERE subject = 'bulk'")" -lt 500 ] && break
	sleep 0.1
done
kill -KILL "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
# the server ends the killed client's batch (committed or rolled back)
for _ in $(seq 100); do
	[ "$(psqlc "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%postroom_purge_batch%' AND pid <> pg_backend_pid()")" = 0 ] && break
	sleep 0.1
done
left=$(psqlc "SELECT count(*) FROM emails WHERE subject = 'bulk'")
sleep 1
is "$(psqlc "SELECT count(*) FROM emails WHERE subject = 'bulk'")" "$left" "... and nothing purges after the kill"
ok "[ '$left' -gt 0 ] && [ '$left' -lt 600 ]" "the purge was killed in the middle ($left of 600 left)"
# on a terminal (script(1) gives it one) the re-run shows a progress line on stderr
script -qec "'$POSTROOM_BUILDDIR/postroomctl' -c '$POSTROOM_CONF' mail purge --batch 20 2>&1; echo \"exit \$?\"" \
	/dev/null >"$TAP_TMP/tty" 2>&1
like "$(tr '\r' '\n' <"$TAP_TMP/tty")" "exit 0" "mail purge again after the kill (on a terminal)"
like "$(tr '\r' '\n' <"$TAP_TMP/tty")" "purge: batch [0-9]+, [0-9]+ emails, [0-9]+ memberships, [0-9]+ bytes freed" \
	"... with a progress line"
sed "s/dbname=postroom/dbname=copy/" "$POSTROOM_CONF" >"$TAP_TMP/copy.conf"
"$POSTROOM_BUILDDIR/postroomctl" -c "$TAP_TMP/copy.conf" mail purge --batch 20 >/dev/null
is "$(psqlc "SELECT count(*) FROM emails WHERE subject = 'bulk'")" "0" "every old email purged"
is "$(fingerprint postroom)" "$(fingerprint copy)" \
	"killed and run again: the same end state as one uninterrupted purge"

# --- user remove -------------------------------------------------------------------
r1=$(mail "carol only" 1 "'carol@example.com'")
r2=$(mail "carol and bob" 1 "'carol@example.com', 'bob@example.com'")
run_status 0 "user remove without --keep-mail" pctl user remove carol@example.com
is "$(exists "$r1")/$(exists "$r2")/$(members "$r2")" "0/1/1" \
	"the mail only carol had is expunged; the shared one stays for bob"
pctl user add carol@example.com >/dev/null
is "$(pctl --json mail list --user carol@example.com | jq length)" "0" "a new carol sees nothing"
k1=$(mail "erin kept" 1 "'erin@other.org'")
run_status 0 "user remove --keep-mail 7" pctl --json user remove erin@other.org --keep-mail 7
is "$(jq -c '[.messages_kept, .keep_mail_days]' "$TAP_TMP/out")" "[3,7]" "... reports the messages kept and the days"
is "$(exists "$k1")/$(members "$k1")" "1/0" "the mail is kept, in nobody's mailbox"
is "$(psqlc "SELECT bool_and(orphaned_at IS NOT NULL AND keep_until > now() + interval '6 days')
              FROM email_recipients WHERE email_id = '$k1'")" "t" "... orphaned, kept until in 7 days"
pctl user add erin@other.org >/dev/null
is "$(pctl --json mail list --user erin@other.org | jq length)" "0" "the new owner of the address sees nothing"
pctl mail purge >/dev/null
is "$(exists "$k1")" "1" "a purge within the 7 days keeps it"
psqlc "UPDATE email_recipients SET keep_until = now() - interval '1 second' WHERE email_id = '$k1'" >/dev/null
run_status 0 "a purge after the days (--pause between batches)" pctl mail purge --pause 10
is "$(exists "$k1")" "0" "... expunges it"
run_status 1 "user remove of an unknown user exits 1" pctl user remove nobody@example.com
run_status 64 "user remove --keep-mail with a bad number exits 64" pctl user remove bob@example.com --keep-mail x
done_testing
