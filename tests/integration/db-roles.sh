#!/usr/bin/env bash
# db-roles.sh - least-privilege database roles (issue 17 item 5,
# sql/012_roles.sql): db migrate creates the NOLOGIN group roles, every
# table, sequence and function has a recorded grant decision for every
# group role (a later migration that forgets one fails here), PUBLIC holds
# nothing, each role is refused what it must not do, the programs run
# with only their role, and config check warns about a daemon that logs in
# as a superuser or as the owner.
. "$(dirname "$0")/../lib/tap.sh"
. "$POSTROOM_SRCDIR/tests/lib/pg.sh"

pg_start || { fail "private PostgreSQL starts"; done_testing; }
pg_fresh_db postroom || { fail "database migrated"; done_testing; }
pg_login_roles || fail "login roles created"

# --- the group roles -----------------------------------------------------------
is "$(psqlc "SELECT string_agg(s.rolname || ':' || r.rolcanlogin, ',' ORDER BY s.role)
	FROM schema_roles s JOIN pg_roles r ON r.rolname = s.rolname")" \
	"postroom_admin:false,postroom_app:false,postroom_authd:false,postroom_deliver:false,postroom_lookup:false,postroom_rules:false,postroom_webhook:false" \
	"db migrate created the group roles, NOLOGIN, named after the database"
out=$(pctl db migrate)
is "$out" "applied 0 migrations; schema version $(psqlc 'SELECT max(version) FROM schema_migrations')" \
	"a second db migrate changes nothing"

# --- every object has a decision for every role ----------------------------------
# objects: tables, views, sequences ("TABLE x", "SEQUENCE x") and functions
# ("FUNCTION f(types)") of the schema, not those of an extension
OBJECTS="SELECT CASE c.relkind WHEN 'S' THEN 'SEQUENCE ' ELSE 'TABLE ' END || c.relname AS object
	   FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
	    AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')
	 UNION ALL
	 SELECT 'FUNCTION ' || p.oid::regprocedure::text FROM pg_proc p
	  WHERE p.pronamespace = 'public'::regnamespace
	    AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')"
MISSING="SELECT string_agg(o.object || ' / ' || s.role, ', ' ORDER BY o.object, s.role)
	   FROM ($OBJECTS) o CROSS JOIN schema_roles s
	  WHERE NOT EXISTS (SELECT 1 FROM schema_grants g WHERE g.object = o.object AND g.role = s.role)"
n=$(psqlc "SELECT count(*) FROM ($OBJECTS) o")
ok '[ "$n" -ge 25 ]' "the schema has $n tables, sequences and functions"
is "$(psqlc "$MISSING")" "" "every object has a grant decision for every group role"
is "$(psqlc "SELECT string_agg(g.object, ', ') FROM schema_grants g
	WHERE g.object NOT IN (SELECT object FROM ($OBJECTS) o)")" "" \
	"every decision names an object that exists"
# the check can fail: an object a later migration forgot
psqlc "CREATE TABLE later_feature (id int); CREATE FUNCTION later_fn() RETURNS int LANGUAGE sql AS 'SELECT 1'"
like "$(psqlc "$MISSING")" "^FUNCTION later_fn\(\) / admin, .*TABLE later_feature / webhook$" \
	"... and names a table and a function created without decisions"
ok '[ "$(psqlc "SELECT has_function_privilege('"'"'postroom_app'"'"', '"'"'later_fn()'"'"', '"'"'EXECUTE'"'"')")" = f ]' \
	"... whose function PUBLIC cannot execute (default privileges of the migrating role)"
psqlc "SELECT postroom_grants('TABLE later_feature', 'app=SELECT'); SELECT postroom_grants('FUNCTION later_fn()', '')"
is "$(psqlc "$MISSING")" "" "postroom_grants records one decision per role (the rule of doc/schema.md)"
is "$(psqlc "SELECT has_table_privilege('postroom_app', 'later_feature', 'SELECT')::text
	|| has_table_privilege('postroom_rules', 'later_feature', 'SELECT')::text")" "truefalse" \
	"... and grants what it records, nothing more"
psqlc "DROP TABLE later_feature; DROP FUNCTION later_fn(); DELETE FROM schema_grants WHERE object IN ('TABLE later_feature', 'FUNCTION later_fn()')"

# PUBLIC: no privilege on any table or function of the schema
is "$(psqlc "SELECT string_agg(o, ', ') FROM (
	SELECT c.relname::text AS o FROM pg_class c, aclexplode(c.relacl) a
	 WHERE c.relnamespace = 'public'::regnamespace AND a.grantee = 0
	UNION ALL
	SELECT p.oid::regprocedure::text FROM pg_proc p
	 WHERE p.pronamespace = 'public'::regnamespace
	   AND (p.proacl IS NULL OR EXISTS (SELECT 1 FROM aclexplode(p.proacl) a WHERE a.grantee = 0))) x")" \
	"" "PUBLIC holds no privilege on a table or function of the schema"
# a decision of none is no privilege at all (table or column)
is "$(psqlc "SELECT string_agg(g.object || ' / ' || g.role, ', ') FROM schema_grants g
	JOIN schema_roles s ON s.role = g.role
	WHERE g.privileges = '' AND g.object LIKE 'TABLE %' AND (
	   EXISTS (SELECT 1 FROM pg_class c, aclexplode(c.relacl) a
	            WHERE c.oid = to_regclass(substr(g.object, 7)) AND a.grantee = s.rolname::regrole)
	   OR EXISTS (SELECT 1 FROM pg_attribute t, aclexplode(t.attacl) a
	            WHERE t.attrelid = to_regclass(substr(g.object, 7)) AND a.grantee = s.rolname::regrole))")" \
	"" "a decision of none leaves the role no table or column privilege"
is "$(psqlc "SELECT string_agg(proname, ', ') FROM pg_proc WHERE pronamespace = 'public'::regnamespace
	AND prosecdef AND NOT EXISTS (SELECT 1 FROM unnest(proconfig) c WHERE c LIKE 'search_path=%')")" \
	"" "every SECURITY DEFINER function sets search_path"

# --- what each role must not do ----------------------------------------------------
pctl domain add example.com >/dev/null
pctl user add alice@example.com >/dev/null
uid=$(psqlc "SELECT id FROM users WHERE address = 'alice@example.com'")
as() { "$PG_BINDIR/psql" -qXAt -v ON_ERROR_STOP=1 "$(pg_role_conninfo "$1")" -c "$2" 2>&1; }
like "$(as authd 'SELECT count(*) FROM emails')" "permission denied for table emails" \
	"authd cannot read emails"
like "$(as deliver 'SELECT count(*) FROM api_keys')" "permission denied for table api_keys" \
	"deliver cannot read api_keys"
like "$(as app "INSERT INTO api_keys (user_id, prefix, key_hash, scopes) VALUES ('$uid', 'AAAAAAAAAAAA', '\$2b\$04\$x', '{smtp}')")" \
	"permission denied for table api_keys" "app cannot insert into api_keys"
like "$(as milter "UPDATE users SET display_name = 'x'")" "permission denied for table users" \
	"rules (milter) cannot update users"
like "$(as policyd "SELECT count(*) FROM api_keys")" "permission denied for table api_keys" \
	"rules (policyd) cannot read api_keys"
like "$(as authd "UPDATE api_keys SET key_hash = key_hash")" "permission denied for table api_keys" \
	"authd cannot change a key hash (only last_used_at)"
like "$(as lmtpd "DELETE FROM emails")" "permission denied for table emails" \
	"deliver (lmtpd) cannot delete mail"
like "$(as app "UPDATE email_recipients SET delivered = true")" "permission denied for table email_recipients" \
	"app cannot put mail in a mailbox"
# the mailbox state (sql/015_mailbox.sql): the app changes it only
# through the state functions, never with UPDATE or DELETE
like "$(as app "UPDATE mailbox_entries SET is_read = true")" "permission denied for table mailbox_entries" \
	"app cannot UPDATE mailbox_entries"
like "$(as app "DELETE FROM mailbox_entries")" "permission denied for table mailbox_entries" \
	"app cannot DELETE mailbox_entries"
is "$(psqlc "SELECT string_agg(t.table_name || ':' || t.privilege_type, ', ' ORDER BY 1)
	FROM information_schema.role_table_grants t
	WHERE t.grantee = 'postroom_app' AND t.privilege_type NOT IN ('SELECT', 'REFERENCES', 'TRIGGER')")" "" \
	"app holds no INSERT, UPDATE, DELETE or TRUNCATE on any table"
is "$(psqlc "SELECT count(*) FROM information_schema.column_privileges c
	WHERE c.grantee = 'postroom_app' AND c.privilege_type <> 'SELECT'")" 0 \
	"... nor on any column"
like "$(as app "SELECT postroom_expunge(ARRAY[gen_random_uuid()])")" "permission denied for function postroom_expunge" \
	"app cannot call postroom_expunge (admin only)"
like "$(as lookup "SELECT count(*) FROM users")" "permission denied for table users" \
	"lookup reads domains and addresses only"
like "$(as admin "CREATE TABLE x (i int)")" "permission denied for schema public" \
	"admin cannot create objects"
like "$(as admin "DELETE FROM schema_migrations")" "permission denied for table schema_migrations" \
	"admin cannot change the migrations"
# ... and what they need
is "$(as authd "SELECT count(*) FROM api_keys k JOIN users u ON u.id = k.user_id")" 0 "authd reads keys and users"
is "$(as authd "UPDATE users SET last_login_at = now() WHERE id = '$uid'")" "" "authd updates last_login_at"
is "$(as milter "SELECT count(*) FROM domains, user_addresses")" 1 "rules reads domains and addresses"
is "$(as policyd "INSERT INTO quota_usage (login, window_start, messages) VALUES ('alice@example.com', now(), 1)")" \
	"" "rules writes quota_usage"
is "$(as lookup "SELECT name FROM domains")" example.com "lookup reads domains"

# --- the programs, each with its own role ---------------------------------------------
pg_roles_conf >>"$POSTROOM_CONF"
cat >>"$POSTROOM_CONF" <<C
security = { hmac_secret = "db-roles-secret-0123456789abcdefghijklmnop"; };
C
sed -i "s|conninfo = \"host=$PGHOST port=$PGPORT user=$PGUSER dbname=postroom\"|conninfo = \"$(pg_role_conninfo admin)\"; migrate_conninfo = \"host=$PGHOST port=$PGPORT user=$PGUSER dbname=postroom\"|" "$POSTROOM_CONF"
like "$(grep '^database' "$POSTROOM_CONF")" "user=postroom_admin_login" "postroomctl uses the admin login"
run_status 0 "postroomctl db migrate runs as database.migrate_conninfo (the owner)" pctl db migrate
key=$(pctl key create alice@example.com --scope smtp | sed -n 's/^key: *//p')
ok '[ -n "$key" ]' "postroomctl (admin) creates a key"
run_status 0 "postroomctl (admin) adds an alias" pctl alias add al@example.com alice@example.com
pctl alias add postmaster@example.com alice@example.com >/dev/null
printf 'From: bob@example.net\nTo: alice@example.com\nSubject: roles\nMessage-Id: <roles@example.net>\n\nhi\n' |
	"$POSTROOM_BUILDDIR/postroom-deliver" -c "$POSTROOM_CONF" -f bob@example.net -- alice@example.com \
		>"$TAP_TMP/deliver.out" 2>&1
is "$?" 0 "postroom-deliver stores a message as the deliver login"
is "$(psqlc "SELECT count(*) FROM email_recipients WHERE user_id = '$uid' AND delivered")" 1 \
	"... into alice's mailbox"
ok 'printf "%s\n" "$key" | pctl key check alice@example.com >/dev/null' "postroomctl key check reads keys as admin"
run_status 0 "postroom-milter -t checks its configuration as the rules login" \
	"$POSTROOM_BUILDDIR/postroom-milter" -t -c "$POSTROOM_CONF"
run_status 0 "postroomctl mail list reads mail as admin" pctl mail list --user alice@example.com
eid=$(psqlc "SELECT email_id FROM mailbox_entries WHERE user_id = '$uid' LIMIT 1")
is "$(as app "SELECT postroom_mark_read('$uid', ARRAY['$eid']::uuid[])")" 1 \
	"app marks a message read through postroom_mark_read"
is "$(as app "SELECT is_read FROM mailbox_entries WHERE user_id = '$uid' AND email_id = '$eid'")" t \
	"... and reads the state"
is "$(as app "SELECT postroom_trash('$uid', ARRAY['$eid']::uuid[])::text || postroom_restore('$uid', ARRAY['$eid']::uuid[])
	|| postroom_mark_flagged('$uid', ARRAY['$eid']::uuid[]) || (SELECT count(*) FROM postroom_mailbox_changes('$uid', 0))")" 1111 \
	"app calls postroom_trash, postroom_restore, postroom_mark_flagged, postroom_mailbox_changes"
kid=$(pctl --json key list alice@example.com | jq -r '.[0].id')
run_status 0 "postroomctl key revoke as admin (authd_sync_seq, authd_instances)" pctl key revoke "$kid"
pctl user add carol@example.com >/dev/null
run_status 0 "postroomctl user remove as admin" pctl user remove carol@example.com

# postroom-lmtpd as the lmtpd login (its section comes from lmtpd_start)
. "$POSTROOM_SRCDIR/tests/integration/lmtpd-helpers.bash"
grep -v '^lmtpd = ' "$POSTROOM_CONF" >"$TAP_TMP/lmtpd-base.conf"
chmod 600 "$TAP_TMP/lmtpd-base.conf"
if POSTROOM_CONF=$TAP_TMP/lmtpd-base.conf LMTPD_EXTRA="conninfo = \"$(pg_role_conninfo lmtpd)\";" lmtpd_start; then
	out=$(printf 'LHLO c\r\nMAIL FROM:<d@example.org>\r\nRCPT TO:<al@example.com>\r\nRCPT TO:<nobody@example.com>\r\nDATA\r\nFrom: d@example.org\r\nSubject: lmtp roles\r\nMessage-ID: <lmtp-roles@example.org>\r\n\r\nhi\r\n.\r\nQUIT\r\n' | lmtp "$LMTPD_SOCKET")
	like "$out" "550 5.1.1" "postroom-lmtpd (lmtpd login) looks up recipients"
	like "$out" "250 2.0.0" "... and stores the message"
	is "$(psqlc "SELECT count(*) FROM email_recipients r JOIN emails e ON e.id = r.email_id
		WHERE e.message_id = 'lmtp-roles@example.org' AND r.user_id = '$uid' AND r.delivered")" 1 \
		"... in alice's mailbox"
	like "$(grep -c . "$LMTPD_LOG") $(grep -i 'permission denied' "$LMTPD_LOG")" "^[0-9]+ $" "... with no permission error in its log"
else
	fail "postroom-lmtpd starts as the lmtpd login" "$(tail -5 "$LMTPD_LOG")"
fi

# --- config check ------------------------------------------------------------------
run_status 0 "config check passes with a role per program" pctl config check
is "$(grep -c warning "$TAP_TMP/err")" 0 "... without a warning"
cp "$POSTROOM_CONF" "$TAP_TMP/super.conf"
sed -i "s|user=postroom_authd_login|user=$PGUSER|" "$TAP_TMP/super.conf"
run_status 0 "config check still passes when authd logs in as a superuser" \
	"$POSTROOM_BUILDDIR/postroomctl" -c "$TAP_TMP/super.conf" config check
like "$(cat "$TAP_TMP/err")" "warning: authd \(authd.conninfo\): connects as $PGUSER, a superuser" \
	"... with a warning naming authd"
"$PG_BINDIR/psql" -qX -d postroom -c "CREATE ROLE schema_owner_login LOGIN; GRANT $PGUSER TO schema_owner_login" >/dev/null
cp "$POSTROOM_CONF" "$TAP_TMP/owner.conf"
sed -i "s|user=postroom_deliver_login|user=schema_owner_login|" "$TAP_TMP/owner.conf"
"$POSTROOM_BUILDDIR/postroomctl" -c "$TAP_TMP/owner.conf" config check >/dev/null 2>"$TAP_TMP/err"
like "$(cat "$TAP_TMP/err")" "warning: deliver \(deliver.conninfo\): connects as schema_owner_login, the owner of the schema" \
	"config check warns when a daemon logs in as (a member of) the owner"
grep -v '^\(authd\|milter\|policyd\|deliver\|lmtpd\) = ' "$POSTROOM_CONF" >"$TAP_TMP/shared.conf"
chmod 600 "$TAP_TMP/shared.conf"
sed -i "s|user=postroom_admin_login|user=$PGUSER|" "$TAP_TMP/shared.conf"
"$POSTROOM_BUILDDIR/postroomctl" -c "$TAP_TMP/shared.conf" config check >/dev/null 2>"$TAP_TMP/err"
like "$(cat "$TAP_TMP/err")" "warning: authd \(database.conninfo\), milter \(database.conninfo\), policyd \(database.conninfo\), deliver \(database.conninfo\), lmtpd \(database.conninfo\): connects as $PGUSER, a superuser" \
	"one shared database.conninfo: one warning naming every daemon"

# --- the role prefix ------------------------------------------------------------------
"$PG_BINDIR/psql" -qX -d postgres -c 'CREATE DATABASE second' >/dev/null
cat >"$TAP_TMP/second.conf" <<C
database = { conninfo = "host=$PGHOST port=$PGPORT user=$PGUSER dbname=second"; role_prefix = "pr2_"; };
C
"$POSTROOM_BUILDDIR/postroomctl" -c "$TAP_TMP/second.conf" db migrate >/dev/null
is "$("$PG_BINDIR/psql" -qXAt -d second -c "SELECT string_agg(rolname, ',' ORDER BY rolname) FROM schema_roles")" \
	"pr2_admin,pr2_app,pr2_authd,pr2_deliver,pr2_lookup,pr2_rules,pr2_webhook" \
	"database.role_prefix names the group roles of a second database"
is "$("$PG_BINDIR/psql" -qXAt -d second -c "SELECT has_table_privilege('postroom_authd', 'api_keys', 'SELECT')")" f \
	"... and the first database's roles have no right there"

done_testing
