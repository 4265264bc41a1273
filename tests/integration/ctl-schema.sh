#!/usr/bin/env bash
# ctl-schema.sh - migrations against a real PostgreSQL: applied once,
# idempotent, safe when two run at once, recorded in schema_migrations.
. "$(dirname "$0")/../lib/tap.sh"
. "$POSTROOM_SRCDIR/tests/lib/pg.sh"

pg_start || { fail "private PostgreSQL starts"; done_testing; }
pass "private PostgreSQL starts (socket in $PGHOST)"
ok '[ -S "$PGHOST/.s.PGSQL.$PGPORT" ]' "server listens on a unix socket in the temp dir"

"$PG_BINDIR/psql" -qX -d postgres -c 'CREATE DATABASE m1' -c 'CREATE DATABASE m2' >/dev/null
cat >"$TAP_TMP/m1.conf" <<C
database = { conninfo = "host=$PGHOST port=$PGPORT user=postroom dbname=m1"; };
C
out=$("$POSTROOM_BUILDDIR/postroomctl" -c "$TAP_TMP/m1.conf" db migrate)
like "$out" '^applied [1-9][0-9]* migrations?; schema version [1-9]' "first migrate applies: $out"
out=$("$POSTROOM_BUILDDIR/postroomctl" -c "$TAP_TMP/m1.conf" --json db migrate)
like "$out" '"applied": 0' "second migrate applies nothing"
is "$("$PG_BINDIR/psql" -qXAt -d m1 -c 'SELECT count(*) FROM schema_migrations WHERE version = 1')" 1 \
	"version 1 recorded once"
tables=$("$PG_BINDIR/psql" -qXAt -d m1 -c "SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables WHERE schemaname = 'public'")
is "$tables" "api_keys,authd_instances,blob_objects_freed,blobs,domains,email_attachments,email_raw_base,email_raw_refs,email_recipients,email_report_links,email_report_recipients,email_reports,emails,events,events_horizon,mailbox_entries,mailbox_tombstones,quota_limits,quota_usage,schema_fixups,schema_grants,schema_migrations,schema_roles,storage_quota_limits,storage_usage,storage_usage_delta,suppressions,user_addresses,users,webhook_deliveries,webhook_endpoints" \
	"all tables exist (001 core, 005 quotas, 010 schema_fixups, 011 authd_instances, 012 schema_roles and schema_grants, 015 mailboxes and storage usage, 016 storage quota, 018 events, 019 reports and suppressions, 021 webhooks, 027 blob_objects_freed)"

# 007: stored messages are compressed with lz4 when the server has it
if "$PG_BINDIR/psql" -qXAt -d m1 -c "SELECT enumvals FROM pg_settings WHERE name = 'default_toast_compression'" | grep -q lz4; then
	is "$("$PG_BINDIR/psql" -qXAt -d m1 -c "SELECT attrelid::regclass::text || '.' || attname || '=' || attcompression::text
		FROM pg_attribute WHERE attrelid IN ('email_raw_base'::regclass, 'emails'::regclass, 'blobs'::regclass)
		AND attname IN ('content', 'text_body', 'html_body')" | LC_ALL=C sort | paste -sd,)" \
		"blobs.content=l,email_raw_base.content=l,emails.html_body=l,emails.text_body=l" \
		"the raw message, the bodies and attachments are compressed with lz4"
else
	diag "this PostgreSQL has no lz4: the compression check is skipped"
fi

# two migrators at once on an empty database: the advisory lock serialises them
sed 's/dbname=m1/dbname=m2/' "$TAP_TMP/m1.conf" >"$TAP_TMP/m2.conf"
"$POSTROOM_BUILDDIR/postroomctl" -c "$TAP_TMP/m2.conf" --json db migrate >"$TAP_TMP/a" 2>&1 &
"$POSTROOM_BUILDDIR/postroomctl" -c "$TAP_TMP/m2.conf" --json db migrate >"$TAP_TMP/b" 2>&1 &
wait %1; ra=$?
wait %2; rb=$?
ok '[ $ra -eq 0 ] && [ $rb -eq 0 ]' "two concurrent migrations both succeed ($ra, $rb)"
applied=$(cat "$TAP_TMP/a" "$TAP_TMP/b" | sed -n 's/.*"applied": \([0-9]*\).*/\1/p' | paste -sd+ | bc)
latest=$("$PG_BINDIR/psql" -qXAt -d m2 -c 'SELECT count(*) FROM schema_migrations')
is "$applied" "$latest" "each migration applied by exactly one of them"

# config check
out=$("$POSTROOM_BUILDDIR/postroomctl" -c "$TAP_TMP/m1.conf" config check)
like "$out" 'OK; database reachable, schema version' "config check reports the schema version"
sed 's/dbname=m1/dbname=nonexistent/' "$TAP_TMP/m1.conf" >"$TAP_TMP/bad.conf"
run_status 69 "config check with an unreachable database exits 69" \
	"$POSTROOM_BUILDDIR/postroomctl" -c "$TAP_TMP/bad.conf" config check
"$PG_BINDIR/psql" -qX -d postgres -c 'CREATE DATABASE m3' >/dev/null
sed 's/dbname=m1/dbname=m3/' "$TAP_TMP/m1.conf" >"$TAP_TMP/m3.conf"
run_status 69 "using an unmigrated database exits 69" \
	"$POSTROOM_BUILDDIR/postroomctl" -c "$TAP_TMP/m3.conf" user list
like "$(cat "$TAP_TMP/err")" 'postroomctl db migrate' "... and says to run db migrate"
done_testing
