#!/usr/bin/env bash
# ctl-users.sh - domains, users, aliases: uniqueness across users, clear
# errors for bad input, linking of earlier recipient rows.
. "$(dirname "$0")/../lib/tap.sh"
. "$POSTROOM_SRCDIR/tests/lib/pg.sh"
pg_start && pg_fresh_db postroom || { fail "database ready"; done_testing; }

run_status 0 "domain add" pctl domain add Example.COM.
is "$(pctl domain list)" "example.com" "domain stored lower-case without trailing dot"
run_status 1 "duplicate domain refused (exit 1)" pctl domain add example.com
like "$(cat "$TAP_TMP/err")" "already exists" "... with a clear message"
run_status 64 "invalid domain refused (exit 64)" pctl domain add 'exa mple.com'
run_status 64 "address literal is no domain" pctl domain add '[127.0.0.1]'

run_status 0 "user add" pctl user add Alice@Example.com --name "Alice A."
run_status 0 "second user" pctl user add bob@example.com
json=$(pctl --json user list)
is "$(echo "$json" | jq -r '.[0].address')" "alice@example.com" "user address canonical lower-case"
is "$(echo "$json" | jq -r '.[0].display_name')" "Alice A." "display name kept"
is "$(echo "$json" | jq -r 'length')" "2" "two users listed"

run_status 1 "same primary address again refused" pctl user add ALICE@example.com
like "$(cat "$TAP_TMP/err")" "already in use" "... as already in use"
run_status 0 "alias add" pctl alias add sales@example.com alice@example.com
is "$(pctl --json user list | jq -c '.[0].aliases')" '["sales@example.com"]' "alias listed with its user"
run_status 1 "the same alias for another user refused" pctl alias add Sales@Example.com bob@example.com
run_status 1 "an alias equal to another user's primary refused" pctl alias add bob@example.com alice@example.com
run_status 1 "a user equal to an existing alias refused" pctl user add sales@example.com
run_status 1 "alias for an unknown user refused" pctl alias add x@example.com nobody@example.com
like "$(cat "$TAP_TMP/err")" "no such user: nobody@example.com" "... naming the user"
is "$(psqlc "SELECT count(*) FROM user_addresses")" "3" "no half-made rows after refusals"

for bad in 'not-an-address' 'a%b@example.com' 'a!b@example.com' '"quoted"@example.com' 'a@[1.2.3.4]' '' 'a@b@c'; do
	run_status 64 "invalid address '$bad' refused with 64" pctl user add "$bad"
done
like "$(cat "$TAP_TMP/err")" "invalid address" "error says the address is invalid"
run_status 64 "unknown sub-command exits 64" pctl frobnicate
run_status 64 "unknown option exits 64" pctl user add carol@example.com --nmae x
run_status 1 "removing an unknown user exits 1" pctl user remove nobody@example.com

# Linking: recipient rows stored before their owner existed are linked when
# the user or the alias appears (the trigger, whatever creates the row).
psqlc "INSERT INTO emails (id, message_id, size_bytes, content_sha256, subject)
       VALUES ('00000000-0000-0000-0000-000000000001', '<m1@x>', 10, sha256('m1'), 'first');
       INSERT INTO email_recipients (email_id, address, type, delivered) VALUES
       ('00000000-0000-0000-0000-000000000001', 'Carol@Example.com', 'to', true),
       ('00000000-0000-0000-0000-000000000001', 'carol.alias@example.com', 'cc', true),
       ('00000000-0000-0000-0000-000000000001', 'stranger@example.net', 'bcc', true);"
is "$(psqlc "SELECT count(*) FROM email_recipients WHERE user_id IS NOT NULL")" "0" "rows unlinked at first"
pctl user add carol@example.com >/dev/null
show=$(pctl --json mail show 00000000-0000-0000-0000-000000000001)
is "$(echo "$show" | jq -r '.recipients[] | select(.address=="Carol@Example.com") | .user')" \
	"carol@example.com" "creating the user links the earlier row (case-insensitive)"
is "$(echo "$show" | jq -r '.recipients[] | select(.address=="carol.alias@example.com") | .user')" \
	"null" "an address not yet owned stays unlinked"
pctl alias add carol.alias@example.com carol@example.com >/dev/null
is "$(pctl --json mail show 00000000-0000-0000-0000-000000000001 | jq -r '.recipients[] | select(.address=="carol.alias@example.com") | .user')" \
	"carol@example.com" "creating the alias links its earlier row"
is "$(pctl --json mail list --user carol@example.com | jq -r '.[0].subject')" "first" \
	"the email is in carol's mailbox"
is "$(pctl --json mail list --user alice@example.com | jq -r 'length')" "0" "and not in alice's"
is "$(psqlc "SELECT user_id IS NULL FROM email_recipients WHERE address = 'stranger@example.net'")" "t" \
	"a stranger's row stays unlinked"
run_status 0 "alias remove" pctl alias remove carol.alias@example.com
run_status 1 "removing it twice exits 1" pctl alias remove carol.alias@example.com
run_status 0 "user remove" pctl user remove carol@example.com
is "$(psqlc "SELECT count(*) FROM email_recipients WHERE user_id IS NOT NULL")" "0" \
	"removed user's rows are unlinked, the mail is kept"
run_status 0 "domain remove" pctl domain remove example.com
run_status 1 "removing it again exits 1" pctl domain remove example.com
done_testing
