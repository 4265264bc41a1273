# pipeline.sh - the whole postroom pipeline as an administrator installs it:
# a private PostgreSQL, postroom-authd, postroom-milter, postroom-policyd
# and one private Postfix whose main.cf/master.cf are
# contrib/postfix/main.cf.postroom and master.cf.postroom, with only paths,
# ports, sockets, the certificate, the pipe's user and the chroot column
# rewritten (postroom-deliver runs from its pipe(8) services).
# Source after tests/lib/tap.sh and tests/lib/pg.sh.
#
# pipeline_start   build everything in $PIPELINE_DIR (default
#                  $TAP_TMP/pipeline): PostgreSQL (migrated, database
#                  postroom), domain ${PIPELINE_DOMAIN:-example.test}, users
#                  alice@ and bob@, an smtp-scoped API key for alice, one
#                  postroom.conf for every program, the three daemons (and,
#                  with PIPELINE_NOTIFY=1, an HTTP recorder as
#                  deliver.notify_url and postroom-webhookd sending to it),
#                  then Postfix on 127.0.0.1 high ports.
#                  Exports PIPELINE_DIR, PIPELINE_CONF, PIPELINE_DOMAIN,
#                  PIPELINE_KEY, PF_PORT_MX, PF_PORT_SUB, PF_PORT_SUBS,
#                  PF_LOG, PF_CONF (and PGHOST/PGPORT/PGUSER, POSTROOM_CONF,
#                  POSTROOM_DB for pctl and psqlc; HTTP_REC_* with
#                  PIPELINE_NOTIFY=1). Every pid is in
#                  $PIPELINE_DIR/pids/NAME.pid (authd milter policyd postfix
#                  postgres httprec webhookd), every log in $PIPELINE_DIR/logs/
#                  (Postfix's in $PF_LOG), the exported variables in
#                  $PIPELINE_DIR/pipeline.env (source it from another shell).
#                  Stopped at exit, unless PIPELINE_KEEP=1 (tools/demo),
#                  then by pipeline_stop. Returns 1 with the reason on stderr.
#                  $PIPELINE_DIR must be new or empty (a stopped pipeline's
#                  directory is not reused: remove it first).
#   Set before it, optionally:
#     PIPELINE_CONF_EXTRA  array/newline string of "section.name = value"
#                          items added to postroom.conf (they replace the
#                          pipeline's own values of the same name)
#     PIPELINE_ROLES=0     every program logs in as the database owner
#                          (default 1: authd, milter, policyd, deliver and
#                          lmtpd each log in as its own role in its group
#                          role, tests/lib/pg.sh pg_login_roles; postroomctl
#                          stays the owner)
#     PIPELINE_DB_FROM=DIR use the PostgreSQL, database, domain, users and
#                          key of the (running) pipeline in DIR: a second
#                          host on one database (tests/mta/two-hosts.sh)
#     PIPELINE_NOTIFY=1    notification listener (tests/lib/http.sh) fed by
#                          postroom-webhookd (login role PREFIX_webhook_login);
#                          PIPELINE_NOTIFY_ARGS its options (e.g. --hang)
# pipeline_stop [DIR]  stop everything of the pipeline in DIR (default
#                  $PIPELINE_DIR), PostgreSQL and Postfix included; works
#                  from a fresh shell given only the directory; keeps files
#                  (with PIPELINE_SAVE_LOGS=DIR, copies the logs there first).
# pipeline_daemon_start NAME   (re)start authd, milter, policyd or webhookd
# pipeline_daemon_kill NAME [SIGNAL]  signal it (default TERM), wait for
#                  its end
# pipeline_pg_stop / pipeline_pg_start   PostgreSQL down / up, data kept
# pipeline_rewrite_check  print the contrib files' rewriting undone and
#                  compared with contrib/postfix: "ok" or the difference
# pipeline_domains_sync   rewrite Postfix's hosted-domains table from
#                  `postroomctl domain list` (then pipeline_postfix_reload)
# pipeline_send N RCPTS PREFIX [PORT]  N messages in one SMTP session
# pipeline_wait_sql SQL VALUE [S], pipeline_queue_count,
# pipeline_wait_queue N [S], pipeline_row_counts, pipeline_postfix_reload
#
# It never touches /etc/postfix, a system Postfix or a system PostgreSQL:
# PostgreSQL through tests/lib/pg.sh (unix socket in the directory), Postfix
# through tests/lib/postfix.sh (postfix -c DIR, loopback high ports), and
# mail for any domain but the hosted one goes to Postfix's discard.

PIPELINE_SECRET=${PIPELINE_SECRET:-pipeline-secret-0123456789abcdefghijklmnopqrstuvwxyz}
PIPELINE_NOTIFY_KEY=${PIPELINE_NOTIFY_KEY:-pipeline-internal-key}
PIPELINE_NOTIFY_PATH=/api/internal/notifications/new-email

# the system interpreter: a pyenv shim costs a second or more per call
PL_PYTHON=${PL_PYTHON:-$([ -x /usr/bin/python3 ] && echo /usr/bin/python3 || command -v python3)}

_pl_say() { echo "# pipeline: $*" >&2; }

# _pl_lines NAME: the array or string variable NAME, one item a line
_pl_lines() {
	local decl
	decl=$(declare -p "$1" 2>/dev/null) || return 0
	if [[ $decl == "declare -a"* ]]; then
		local -n _pl_ref=$1
		[ ${#_pl_ref[@]} -gt 0 ] && printf '%s\n' "${_pl_ref[@]}"
	else
		printf '%s\n' "${!1}"
	fi
	return 0
}

# _pl_rewrite IN OUT TSV: replace each literal OLD by NEW (TSV lines
# "OLD<TAB>NEW", applied in order); fails when an OLD is not found
_pl_rewrite() {
	"$PL_PYTHON" - "$@" <<'PY'
import sys
src, dst, tsv = sys.argv[1:4]
text = open(src).read()
for line in open(tsv).read().splitlines():
    old, new = line.split("\t")
    if old not in text:
        sys.exit("pipeline: rewrite: %r not in %s" % (old, src))
    text = text.replace(old, new)
open(dst, "w").write(text)
PY
}

# pipeline_rewrite_check: undo every rewrite (last first) and compare with
# the contrib file; prints "ok" when the rewritten files differ from
# contrib/postfix only by the listed replacements
pipeline_rewrite_check() {
	local d=$PIPELINE_DIR/contrib f
	for f in main.cf master.cf; do
		"$PL_PYTHON" - "$d/$f.rewritten" "$d/$f.tsv" "$POSTROOM_SRCDIR/contrib/postfix/$f.postroom" <<'PY' || return 0
import sys
new, tsv, orig = sys.argv[1:4]
text = open(new).read()
pairs = [l.split("\t") for l in open(tsv).read().splitlines()]
for old, rep in reversed(pairs):
    text = text.replace(rep, old)
if text != open(orig).read():
    import difflib
    sys.stdout.writelines(difflib.unified_diff(open(orig).read().splitlines(True),
        text.splitlines(True), orig, "undone " + new))
    sys.exit(1)
PY
	done
	echo ok
}

# _pl_rewrites: the replacements, "OLD<TAB>NEW" (main.cf.tsv, master.cf.tsv)
_pl_rewrites() {
	local d=$PIPELINE_DIR sp=$PIPELINE_DIR/postfix/spool etc=$PIPELINE_DIR/postfix/etc
	printf '%s\t%s\n' \
		"unix:/postroom/milter.sock" "unix:$sp/postroom/milter.sock" \
		"inet:127.0.0.1:10045" "inet:127.0.0.1:$PIPELINE_PD_PORT" \
		"/etc/postfix/" "$etc/" \
		"/etc/ssl/certs/mail.example.com.pem" "$d/postfix/cert.pem" \
		"/etc/ssl/private/mail.example.com.key" "$d/postfix/key.pem" \
		>"$d/contrib/main.cf.tsv"
	printf '%s\t%s\n' \
		"smtp          inet  n       -       y" "127.0.0.1:@PF_PORT_MX@ inet  n       -       n" \
		"submission    inet  n       -       y" "127.0.0.1:@PF_PORT_SUB@ inet  n       -       n" \
		"submissions   inet  n       -       y" "127.0.0.1:@PF_PORT_SUBS@ inet  n       -       n" \
		"user=postroom " "user=$PIPELINE_USER " \
		"argv=/usr/sbin/postroom-deliver " "argv=$POSTROOM_BUILDDIR/postroom-deliver -c $PIPELINE_CONF " \
		>"$d/contrib/master.cf.tsv"
}

# _pl_postfix_files: rewritten contrib files, the tables they name
_pl_postfix_files() {
	local d=$PIPELINE_DIR c=$POSTROOM_SRCDIR/contrib/postfix etc=$PIPELINE_DIR/postfix/etc
	mkdir -p "$d/contrib/pm" "$etc" || return 1
	: >"$d/contrib/pm/main.cf"
	_pl_rewrites
	_pl_rewrite "$c/main.cf.postroom" "$d/contrib/main.cf.rewritten" "$d/contrib/main.cf.tsv" &&
		_pl_rewrite "$c/master.cf.postroom" "$d/contrib/master.cf.rewritten" "$d/contrib/master.cf.tsv" ||
		return 1
	cp "$c/postroom_header_checks" "$c/postroom_transport" "$etc/" &&
		postmap -c "$d/contrib/pm" "hash:$etc/postroom_transport" || return 1
	pipeline_domains_sync
}

# pipeline_domains_sync: the hosted-domains table, as main.cf.postroom says
pipeline_domains_sync() {
	pctl domain list | awk 'NF { print $1, "OK" }' >"$PIPELINE_DIR/postfix/etc/postroom_domains"
}

# _pl_main_lines: the rewritten main.cf as "name = value" lines (comments
# dropped, continuation lines joined)
_pl_main_lines() {
	grep -v '^[[:space:]]*#' "$PIPELINE_DIR/contrib/main.cf.rewritten" |
		awk '/^[ \t]/ { sub(/^[ \t]+/, " "); line = line $0; next }
			{ if (line != "") print line; line = $0 } END { if (line != "") print line }' | grep .
}

# _pl_conf: write postroom.conf (one file for all programs)
_pl_conf() {
	local sp=$PIPELINE_DIR/postfix/spool l sec kv
	declare -A g=()
	local order=(database apikey security limits rules authd milter policyd deliver lmtpd webhook)
	g[database]="conninfo = \"host=$PGHOST port=$PGPORT user=$PGUSER dbname=$POSTROOM_DB\";"
	g[apikey]="bcrypt_cost = ${POSTROOM_TEST_BCRYPT_COST:-4};"
	g[security]="hmac_secret = \"$PIPELINE_SECRET\";"
	g[limits]="message_size_max = 52428800;"
	g[rules]="mx_enabled = true; port_roles = \"$PF_PORT_MX=mx ORIGINATING=submission\"; sent_recipient = \"sent@postroom.invalid\";"
	g[authd]="listen = \"unix:$sp/private/auth\"; user = \"$PIPELINE_USER\"; socket_owner = \"postfix\"; socket_group = \"postfix\"; socket_mode = \"0660\";"
	g[milter]="socket = \"unix:$sp/postroom/milter.sock\"; user = \"$PIPELINE_USER\"; socket_group = \"postfix\";"
	g[policyd]="listen = \"inet:127.0.0.1:$PIPELINE_PD_PORT\"; user = \"$PIPELINE_USER\"; spf = false; hostname = \"mx.$PF_DOMAIN\";"
	g[deliver]=""
	g[lmtpd]=""
	g[webhook]=""
	if [ "${PIPELINE_NOTIFY:-0}" = 1 ]; then
		g[deliver]="notify_url = \"$HTTP_REC_URL$PIPELINE_NOTIFY_PATH\"; notify_key = \"$PIPELINE_NOTIFY_KEY\";"
		g[webhook]="poll_interval = 200;"
		[ "${PIPELINE_ROLES:-1}" = 1 ] && g[webhook]="${g[webhook]} conninfo = \"$(pg_role_conninfo webhook)\";"
	fi
	if [ "${PIPELINE_ROLES:-1}" = 1 ]; then
		for sec in authd milter policyd deliver lmtpd; do
			g[$sec]="${g[$sec]} conninfo = \"$(pg_role_conninfo $sec)\";"
		done
	fi
	while IFS= read -r l; do
		[ -z "$l" ] && continue
		sec=${l%%.*}
		kv=${l#*.}
		kv=${kv%;}
		g[$sec]="$(printf '%s' "${g[$sec]:-}" | sed -E "s/(^| )${kv%%[ =]*} = [^;]*;//") $kv;"
		[[ " ${order[*]} " == *" $sec "* ]] || order+=("$sec")
	done < <(_pl_lines PIPELINE_CONF_EXTRA)
	{
		echo "# postroom.conf of the pipeline (tests/lib/pipeline.sh): one file, every program"
		for sec in "${order[@]}"; do
			printf '%s = { %s };\n' "$sec" "${g[$sec]}"
		done
	} >"$PIPELINE_CONF"
	chown "$PIPELINE_USER" "$PIPELINE_CONF" && chmod 600 "$PIPELINE_CONF"
}

# _pl_wait NAME: until the daemon NAME answers (10 s), or it died
_pl_wait() {
	local name=$1 pid i log=$PIPELINE_DIR/logs/$1.log sp=$PIPELINE_DIR/postfix/spool
	pid=$(cat "$PIPELINE_DIR/pids/$name.pid")
	for i in $(seq 100); do
		case $name in
		authd) [ -S "$sp/private/auth" ] && grep -q 'LISTEN postroom_keys' "$log" && return 0 ;;
		milter) [ -S "$sp/postroom/milter.sock" ] && grep -q 'started on' "$log" && return 0 ;;
		policyd) (exec 3<>"/dev/tcp/127.0.0.1/$PIPELINE_PD_PORT") 2>/dev/null && return 0 ;;
		webhookd) [ "$(psqlc "SELECT count(*) FROM webhook_endpoints WHERE name = 'notify_url'")" = 1 ] && return 0 ;;
		esac
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	_pl_say "postroom-$name did not come up:"
	tail -n 20 "$log" | sed 's/^/#   /' >&2
	return 1
}

# pipeline_daemon_start NAME: start postroom-NAME -f with postroom.conf
pipeline_daemon_start() {
	local name=$1 sp=$PIPELINE_DIR/postfix/spool
	case $name in
	authd) rm -f "$sp/private/auth" ;;
	milter) rm -f "$sp/postroom/milter.sock" ;;
	policyd | webhookd) ;;
	*) _pl_say "no daemon $name"; return 1 ;;
	esac
	echo "--- start $(date -u +%T)" >>"$PIPELINE_DIR/logs/$name.log"
	"$POSTROOM_BUILDDIR/postroom-$name" -f -c "$PIPELINE_CONF" \
		>>"$PIPELINE_DIR/logs/$name.log" 2>&1 </dev/null &
	echo $! >"$PIPELINE_DIR/pids/$name.pid"
	_pl_wait "$name"
}

# _pl_pid_is PID WORD: PID is alive and its command line contains WORD
# (never signal a process that merely reused a stale pid)
_pl_pid_is() {
	[ -n "$1" ] && kill -0 "$1" 2>/dev/null && ps -o args= -p "$1" 2>/dev/null | grep -q -- "$2"
}

# pipeline_daemon_kill NAME [SIGNAL]: signal postroom-NAME (or httprec),
# wait until it is gone (5 s, then SIGKILL)
pipeline_daemon_kill() {
	local name=$1 sig=${2:-TERM} dir=${3:-$PIPELINE_DIR} pid i word
	pid=$(cat "$dir/pids/$name.pid" 2>/dev/null) || return 0
	word=postroom-$name
	[ "$name" = httprec ] && word=httprec.py
	_pl_pid_is "$pid" "$word" || return 0
	declare -F stop_pid >/dev/null || . "$POSTROOM_SRCDIR/tests/lib/ports.sh"
	stop_pid "$pid" "$sig" 50
}

pipeline_pg_stop() { pg_server_stop; }
pipeline_pg_start() {
	pg_server_start && head -n 1 "$PG_DIR/data/postmaster.pid" >"$PIPELINE_DIR/pids/postgres.pid"
}

# _pl_env: the exported variables, for another shell
_pl_env() {
	local v
	for v in PIPELINE_DIR PIPELINE_CONF PIPELINE_DOMAIN PIPELINE_KEY PIPELINE_USER \
		PIPELINE_PD_PORT PF_PORT_MX PF_PORT_SUB PF_PORT_SUBS PF_LOG PF_CONF PF_DIR \
		PF_MASTER_PID PGHOST PGPORT PGUSER POSTROOM_CONF POSTROOM_DB PG_DIR PG_RUNAS \
		HTTP_REC_URL HTTP_REC_OUT; do
		[ -n "${!v:-}" ] && printf 'export %s=%q\n' "$v" "${!v}"
	done >"$PIPELINE_DIR/pipeline.env"
}

# _pl_db_new DIR: a new PostgreSQL, database, login roles, domain, users, key
_pl_db_new() {
	pg_start && pg_fresh_db postroom || { _pl_say "PostgreSQL did not start"; return 1; }
	pg_login_roles || { _pl_say "no login roles"; return 1; }
	psqlc "CREATE ROLE ${POSTROOM_DB}_webhook_login LOGIN IN ROLE $(psqlc "SELECT rolname FROM schema_roles WHERE role = 'webhook'")" >/dev/null ||
		{ _pl_say "no webhook login role"; return 1; }
	head -n 1 "$PG_DIR/data/postmaster.pid" >"$1/pids/postgres.pid"
	PIPELINE_USER=${PG_RUNAS:-$(id -un)}
	pctl domain add "$PIPELINE_DOMAIN" >/dev/null &&
		pctl user add "alice@$PIPELINE_DOMAIN" --name Alice >/dev/null &&
		pctl user add "bob@$PIPELINE_DOMAIN" --name Bob >/dev/null || return 1
	PIPELINE_KEY=$(pctl --json key create "alice@$PIPELINE_DOMAIN" --scope smtp --name pipeline | jq -r .key)
	[ -n "$PIPELINE_KEY" ] && [ "$PIPELINE_KEY" != null ] || { _pl_say "no API key"; return 1; }
}

# _pl_db_from DIR: the PostgreSQL, database, domain, users and key of the
# pipeline in DIR (a second host on one database: nothing is created)
_pl_db_from() {
	[ -f "$1/pipeline.env" ] || { _pl_say "no pipeline in $1"; return 1; }
	eval "$(grep -E '^export (PGHOST|PGPORT|PGUSER|POSTROOM_DB|PG_DIR|PG_RUNAS|PIPELINE_KEY|PIPELINE_USER)=' "$1/pipeline.env")"
	export POSTROOM_CONF=$1/postroom.conf
}

pipeline_start() {
	local dir=${PIPELINE_DIR:-$TAP_TMP/pipeline}
	mkdir -p "$dir" && dir=$(cd "$dir" && pwd) || return 1
	chmod 755 "$dir"
	# every helper below keeps its files (and its port list) in $dir
	local TAP_TMP=$dir
	# helpers that run python3 (free_port, http_rec_start) get the system one
	local -x PATH="${PL_PYTHON%/*}:$PATH"
	local hooks=("${tap_cleanup_hooks[@]}")
	export PIPELINE_DIR=$dir PIPELINE_DOMAIN=${PIPELINE_DOMAIN:-example.test}
	export PIPELINE_CONF=$dir/postroom.conf PIPELINE_KEY PIPELINE_USER PIPELINE_PD_PORT
	mkdir -p "$dir/pids" "$dir/logs" "$dir/contrib" || return 1
	declare -F free_port >/dev/null || . "$POSTROOM_SRCDIR/tests/lib/ports.sh"
	declare -F pf_start >/dev/null || . "$POSTROOM_SRCDIR/tests/lib/postfix.sh"

	if [ -n "${PIPELINE_DB_FROM:-}" ]; then
		_pl_db_from "$PIPELINE_DB_FROM" || return 1
	else
		_pl_db_new "$dir" || return 1
	fi
	PIPELINE_PD_PORT=$(free_port) || return 1
	if [ "${PIPELINE_NOTIFY:-0}" = 1 ]; then
		declare -F http_rec_start >/dev/null || . "$POSTROOM_SRCDIR/tests/lib/http.sh"
		http_rec_start ${PIPELINE_NOTIFY_ARGS:-} || return 1
		echo "$HTTP_REC_PID" >"$dir/pids/httprec.pid"
	fi

	_pl_postfix_files || { _pl_say "contrib files could not be rewritten"; return 1; }
	local -a PF_MAIN_EXTRA PF_MASTER_SERVICES
	mapfile -t PF_MAIN_EXTRA < <(_pl_main_lines)
	mapfile -t PF_MASTER_SERVICES <"$dir/contrib/master.cf.rewritten"
	pf_start "$dir/postfix" || { _pl_say "Postfix did not start"; return 1; }
	echo "$PF_MASTER_PID" >"$dir/pids/postfix.pid"
	# the milter's socket directory, as main.cf.postroom says to create it
	install -d -o "$PIPELINE_USER" -g postfix -m 0750 "$dir/postfix/spool/postroom" || return 1

	_pl_conf || return 1
	export POSTROOM_CONF=$PIPELINE_CONF
	pipeline_daemon_start authd && pipeline_daemon_start milter &&
		pipeline_daemon_start policyd || return 1
	if [ "${PIPELINE_NOTIFY:-0}" = 1 ]; then
		pipeline_daemon_start webhookd || return 1
	fi
	_pl_env
	if [ "${PIPELINE_KEEP:-0}" = 1 ]; then
		tap_cleanup_hooks=("${hooks[@]}")
	else
		at_exit pipeline_stop "$dir"
	fi
	return 0
}

pipeline_stop() {
	local dir=${1:-${PIPELINE_DIR:-}} n pid runas
	[ -n "$dir" ] && [ -d "$dir/pids" ] || return 0
	# PIPELINE_SAVE_LOGS=DIR: keep the logs for a post-mortem
	if [ -n "${PIPELINE_SAVE_LOGS:-}" ]; then
		mkdir -p "$PIPELINE_SAVE_LOGS" &&
			cp -r "$dir/logs" "$dir/postfix/maillog" "$PIPELINE_SAVE_LOGS/" 2>/dev/null
	fi
	for n in authd milter policyd webhookd httprec; do
		pipeline_daemon_kill "$n" TERM "$dir"
		rm -f "$dir/pids/$n.pid"
	done
	if [ -f "$dir/pids/postfix.pid" ]; then
		declare -F pf_stop >/dev/null || . "$POSTROOM_SRCDIR/tests/lib/postfix.sh"
		PF_CONF=$dir/postfix/etc PF_MASTER_PID=$(cat "$dir/pids/postfix.pid") pf_stop
		rm -f "$dir/pids/postfix.pid"
	fi
	if [ -f "$dir/pg/data/postmaster.pid" ]; then
		runas=$(stat -c %U "$dir/pg/data")
		if [ "$(id -u)" -eq 0 ] && [ "$runas" != root ]; then
			runuser -u "$runas" -- "$PG_BINDIR/pg_ctl" -D "$dir/pg/data" -m fast -w stop >/dev/null 2>&1
		else
			"$PG_BINDIR/pg_ctl" -D "$dir/pg/data" -m fast -w stop >/dev/null 2>&1
		fi
	fi
	rm -f "$dir/pids/postgres.pid"
	return 0
}

# --- helpers for tests and the demo -----------------------------------------

# pipeline_send N RCPT[,RCPT...] PREFIX [PORT]: N distinct messages in one
# SMTP session to the MX port (Subject and Message-Id PREFIX-1..N, from
# sender@foreign.example); prints the number answered 250 at end of data
pipeline_send() {
	"$PL_PYTHON" - "$1" "$2" "$3" "${4:-$PF_PORT_MX}" <<'PY'
import smtplib, sys
n, rcpts, prefix, port = int(sys.argv[1]), sys.argv[2].split(","), sys.argv[3], int(sys.argv[4])
s = smtplib.SMTP("127.0.0.1", port, timeout=60)
s.ehlo("client.example")
ok = 0
for i in range(1, n + 1):
    msg = ("From: sender@foreign.example\r\nTo: %s\r\nSubject: %s-%d\r\n"
           "Message-ID: <%s-%d@foreign.example>\r\n\r\nmessage %d of %d\r\n"
           % (", ".join(rcpts), prefix, i, prefix, i, i, n))
    try:
        s.sendmail("sender@foreign.example", rcpts, msg)
        ok += 1
    except smtplib.SMTPException as e:
        print("refused: %s" % e, file=sys.stderr)
        s.rset()
s.quit()
print(ok)
PY
}

# pipeline_wait_sql SQL VALUE [SECONDS]: until psqlc SQL prints VALUE (30 s)
pipeline_wait_sql() {
	local i t=${3:-30}
	for i in $(seq $((t * 5))); do
		[ "$(psqlc "$1" 2>/dev/null)" = "$2" ] && return 0
		sleep 0.2
	done
	return 1
}

# pipeline_queue_count: messages in Postfix's queue (distinct queue ids:
# showq may list a file twice, or miss it, while it moves between queues)
pipeline_queue_count() {
	pf_queue_ids | wc -l
}

# pipeline_wait_queue N [SECONDS]: until the queue holds N messages (30 s)
pipeline_wait_queue() {
	local i t=${2:-30}
	for i in $(seq $((t * 5))); do
		[ "$(pipeline_queue_count)" = "$1" ] && return 0
		sleep 0.2
	done
	return 1
}

# pipeline_row_counts: "table=rows" of every table of the mail store
pipeline_row_counts() {
	local t
	for t in $(psqlc "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"); do
		printf '%s=%s ' "$t" "$(psqlc "SELECT count(*) FROM \"$t\"")"
	done
	echo
}

# pipeline_postfix_reload: apply main.cf changes (postconf -c "$PF_CONF" -e)
pipeline_postfix_reload() { postfix -c "$PF_CONF" reload >/dev/null 2>&1; }
