# pg.sh - a private PostgreSQL cluster for one test script.
# pg_start makes a cluster with initdb in $TAP_TMP (owned by an unprivileged
# user when run as root: PostgreSQL refuses to run as root), listening only
# on a unix socket inside that directory, and registers its removal with
# at_exit, so it goes away even when a test fails. It never touches a
# system PostgreSQL. Source after tap.sh.
#
#   pg_start                 start the cluster; exports PGHOST PGPORT PGUSER
#   pg_fresh_db NAME         create database NAME, migrate it with postroomctl,
#                            write $TAP_TMP/NAME.conf; exports POSTROOM_CONF
#   pg_login_roles           create a login role per program in the current
#                            database's group roles (sql/012_roles.sql):
#                            DB_PROG_login for PROG authd (group DB_authd),
#                            milter and policyd (DB_rules), deliver and lmtpd
#                            (DB_deliver), admin, app, lookup
#   pg_role_conninfo PROG    the conninfo of PROG's login role
#   pg_roles_conf            the "PROG = { conninfo = ...; };" lines for
#                            authd milter policyd deliver lmtpd
#   pctl ARGS...             postroomctl -c $POSTROOM_CONF ARGS...
#   psqlc SQL                run SQL on the current database, print rows unaligned
#   pg_server_stop / pg_server_start   stop or restart the server, data kept
#
# PG_FSYNC=on keeps fsync and synchronous_commit on (benchmarks); tests
# default to fsync=off for speed — durability is not what they test.

PG_BINDIR=${PG_BINDIR:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}
PG_RUNAS=

# pg_as - run a PostgreSQL server command as the cluster owner
pg_as() {
	if [ -n "$PG_RUNAS" ]; then
		runuser -u "$PG_RUNAS" -- "$@"
	else
		"$@"
	fi
}

pg_pick_owner() {
	[ "$(id -u)" -ne 0 ] && return 0
	if id postgres >/dev/null 2>&1; then
		PG_RUNAS=postgres
	else
		id postroom-test >/dev/null 2>&1 ||
			useradd --system --no-create-home --shell /usr/sbin/nologin postroom-test
		PG_RUNAS=postroom-test
	fi
}

pg_start() {
	PG_DIR="$TAP_TMP/pg"
	pg_pick_owner
	mkdir -p "$PG_DIR"
	[ -n "$PG_RUNAS" ] && chown "$PG_RUNAS" "$PG_DIR"
	chmod 700 "$PG_DIR"
	if ! pg_as "$PG_BINDIR/initdb" -D "$PG_DIR/data" -U postroom --auth=trust \
		-E UTF8 --locale=C.UTF-8 --no-sync >"$TAP_TMP/initdb.log" 2>&1; then
		cat "$TAP_TMP/initdb.log" >&2
		return 1
	fi
	PGPORT=5432
	PGHOST="$PG_DIR"
	PGUSER=postroom
	export PGHOST PGPORT PGUSER
	unset PGDATABASE PGPASSWORD PGSERVICE
	at_exit pg_as "$PG_BINDIR/pg_ctl" -D "$PG_DIR/data" -m immediate stop
	pg_server_start
}

pg_server_start() {
	local sync_opts="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
	[ "${PG_FSYNC:-off}" = on ] && sync_opts=""
	pg_as "$PG_BINDIR/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 30 \
		-o "-k $PG_DIR -p $PGPORT -c listen_addresses= $sync_opts" start >/dev/null ||
		{ tail -n 20 "$PG_DIR/server.log" >&2; return 1; }
}

pg_server_stop() {
	pg_as "$PG_BINDIR/pg_ctl" -D "$PG_DIR/data" -m fast -w stop >/dev/null
}

pg_fresh_db() {
	local name=${1:-postroom}
	"$PG_BINDIR/psql" -qX -d postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS \"$name\"" \
		-c "CREATE DATABASE \"$name\"" >/dev/null || return 1
	POSTROOM_DB=$name
	POSTROOM_CONF="$TAP_TMP/$name.conf"
	cat >"$POSTROOM_CONF" <<CONF
# written by tests/lib/pg.sh
database = { conninfo = "host=$PGHOST port=$PGPORT user=$PGUSER dbname=$name"; };
apikey = { bcrypt_cost = ${POSTROOM_TEST_BCRYPT_COST:-4}; };
CONF
	chmod 600 "$POSTROOM_CONF"
	export POSTROOM_CONF POSTROOM_DB
	pctl db migrate >/dev/null || return 1
}

pg_role_conninfo() {
	echo "host=$PGHOST port=$PGPORT user=${POSTROOM_DB}_$1_login dbname=$POSTROOM_DB"
}

pg_login_roles() {
	"$PG_BINDIR/psql" -qX -v ON_ERROR_STOP=1 -d "$POSTROOM_DB" >/dev/null <<SQL
SET client_min_messages = warning;
DO \$\$
DECLARE
    p text[];
BEGIN
    FOREACH p SLICE 1 IN ARRAY ARRAY[['authd', 'authd'], ['milter', 'rules'], ['policyd', 'rules'],
        ['deliver', 'deliver'], ['lmtpd', 'deliver'], ['admin', 'admin'], ['app', 'app'],
        ['lookup', 'lookup']] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = current_database() || '_' || p[1] || '_login') THEN
            EXECUTE format('CREATE ROLE %I LOGIN', current_database() || '_' || p[1] || '_login');
        END IF;
        EXECUTE format('GRANT %I TO %I', (SELECT rolname FROM schema_roles WHERE role = p[2]),
                       current_database() || '_' || p[1] || '_login');
    END LOOP;
END \$\$;
SQL
}

pg_roles_conf() {
	local p
	for p in authd milter policyd deliver lmtpd; do
		printf '%s = { conninfo = "%s"; };\n' "$p" "$(pg_role_conninfo "$p")"
	done
}

pctl() { "$POSTROOM_BUILDDIR/postroomctl" -c "$POSTROOM_CONF" "$@"; }

psqlc() { "$PG_BINDIR/psql" -qXAt -v ON_ERROR_STOP=1 -d "$POSTROOM_DB" -c "$1"; }
