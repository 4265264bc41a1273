# postfix.sh - a PRIVATE Postfix instance for tests (source after tap.sh).
#
# pf_start [DIR]   build DIR/{etc,spool,data} (default $TAP_TMP/postfix), a
#                  self-signed cert, main.cf/master.cf listening on 127.0.0.1
#                  high ports, run `postfix check`, start it, wait for the MX
#                  port; registers pf_stop with at_exit. Exports PF_DIR,
#                  PF_CONF, PF_LOG, PF_PORT_MX, PF_PORT_SUB (STARTTLS
#                  required), PF_PORT_SUBS (implicit TLS), PF_MASTER_PID.
#                  DIR's parents must be searchable by user postfix.
#   Before it, callers may set:
#     PF_MAIN_EXTRA    array (or newline-separated string) of main.cf lines;
#                      "name = value" lines are applied with `postconf -e`
#                      (so they replace the defaults below), others appended
#     PF_MASTER_EXTRA  array/string of master.cf lines, appended
#     PF_SMTPD_OPTS_MX / _SUB / _SUBS  array/string of "name=value" items,
#                      added as "-o name=value" to that smtpd service
#     PF_MASTER_SERVICES  array/string of master.cf lines that REPLACE the
#                      three smtpd services above (PF_SMTPD_OPTS_* then
#                      unused); @PF_PORT_MX@, @PF_PORT_SUB@ and @PF_PORT_SUBS@
#                      in them become the ports picked (tests/lib/pipeline.sh
#                      passes the services of contrib/postfix/master.cf.postroom)
#     PF_DOMAIN        test domain (default postroom.test), relayed to the
#                      discard transport, as is everything else
# pf_stop          stop it and kill any process of this instance left over
# pf_restart       stop it and start it again on the same configuration,
#                  ports and queue: unlike `postfix reload`, every process
#                  runs the new main.cf when it returns, and no queue file
#                  is left behind in the active queue (a reload that
#                  replaces qmgr while a delivery holds a file makes the new
#                  qmgr skip it, "still being delivered", and nothing looks
#                  at it again until qmgr's next start)
# pf_wait_log RE [T]  wait up to T seconds (10) until the maillog matches RE
# pf_queue_empty   true when the queue is empty;  pf_flush: postqueue -f
# pf_queue_ids     the queue ids in the queue, one a line, each once
#
# It must never touch /etc/postfix or a system Postfix, and never deliver
# anywhere: every transport not overridden by a caller is `discard`.
#
# How it works on Debian 12 / Postfix 3.7, as root:
# - `postfix -c DIR` with a DIR not listed in the default main.cf's
#   alternate_config_directories is allowed for root, and works even when
#   /etc/postfix/main.cf does not exist ("No configuration" install): every
#   command here gets `-c $PF_CONF` (postfix, postconf, postqueue) and child
#   daemons inherit MAIL_CONFIG=$PF_CONF from master. Nothing is written to
#   meta_directory (/etc/postfix): it is only read (postfix-files).
# - Postfix prints most errors only to the log or a tty, so failures print
#   the tail of $PF_LOG; maillog_file needs its prefix in
#   maillog_file_prefixes, and the `postlog` service in master.cf.
# - No chroot (column 5 is n), so no files need copying into the spool.

: "${PF_DOMAIN:=postroom.test}"

# _pf_lines NAME: print the array or string variable NAME one item a line
_pf_lines() {
	local decl
	decl=$(declare -p "$1" 2>/dev/null) || return 0
	if [[ $decl == "declare -a"* ]]; then
		local -n _pf_ref=$1
		[ ${#_pf_ref[@]} -gt 0 ] && printf '%s\n' "${_pf_ref[@]}"
	else
		printf '%s\n' "${!1}"
	fi
	return 0
}

# _pf_opts NAME: "-o a=b -o c=d" from the array/string NAME (one item a line)
_pf_opts() {
	local l
	while IFS= read -r l; do
		[ -n "$l" ] && printf '  -o %s\n' "$l"
	done < <(_pf_lines "$1")
}

_pf_fail() {
	echo "# pf_start: $*" >&2
	[ -f "${PF_LOG:-}" ] && tail -n 30 "$PF_LOG" | sed 's/^/#   log: /' >&2
	return 1
}

# _pf_services: the smtpd services of master.cf (PF_MASTER_SERVICES or the
# three defaults)
_pf_services() {
	if declare -p PF_MASTER_SERVICES >/dev/null 2>&1; then
		_pf_lines PF_MASTER_SERVICES | sed -e "s/@PF_PORT_MX@/$PF_PORT_MX/g" \
			-e "s/@PF_PORT_SUB@/$PF_PORT_SUB/g" -e "s/@PF_PORT_SUBS@/$PF_PORT_SUBS/g"
		return 0
	fi
	cat <<-EOF
	127.0.0.1:$PF_PORT_MX inet n - n - - smtpd
	$(_pf_opts PF_SMTPD_OPTS_MX)
	127.0.0.1:$PF_PORT_SUB inet n - n - - smtpd
	  -o syslog_name=postfix/submission
	  -o smtpd_tls_security_level=encrypt
	$(_pf_opts PF_SMTPD_OPTS_SUB)
	127.0.0.1:$PF_PORT_SUBS inet n - n - - smtpd
	  -o syslog_name=postfix/submissions
	  -o smtpd_tls_wrappermode=yes
	$(_pf_opts PF_SMTPD_OPTS_SUBS)
	EOF
}

pf_start() {
	local dir=${1:-$TAP_TMP/postfix}
	declare -F free_port >/dev/null ||
		. "$(dirname "${BASH_SOURCE[0]}")/ports.sh"
	mkdir -p "$dir" && dir=$(cd "$dir" && pwd) || return 1
	export PF_DIR=$dir PF_CONF=$dir/etc PF_LOG=$dir/maillog
	export PF_PORT_MX PF_PORT_SUB PF_PORT_SUBS
	PF_PORT_MX=$(free_port) && PF_PORT_SUB=$(free_port) &&
		PF_PORT_SUBS=$(free_port) || return 1
	mkdir -p "$PF_CONF" "$dir/spool" "$dir/data" || return 1
	chmod 755 "$dir" "$PF_CONF" "$dir/spool"
	chown postfix "$dir/data" && chmod 700 "$dir/data" || return 1
	: >"$PF_LOG"

	# self-signed certificate for mx.postroom.test
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=mx.$PF_DOMAIN" \
		-keyout "$dir/key.pem" -out "$dir/cert.pem" >/dev/null 2>&1 ||
		_pf_fail "openssl could not make a certificate" || return 1
	chmod 600 "$dir/key.pem"

	cat >"$PF_CONF/main.cf" <<-EOF
	# private test instance written by tests/lib/postfix.sh
	compatibility_level = 3.6
	queue_directory = $dir/spool
	data_directory = $dir/data
	maillog_file = $PF_LOG
	maillog_file_prefixes = /var, /dev/stdout, $dir
	mail_owner = postfix
	setgid_group = postdrop
	myhostname = mx.$PF_DOMAIN
	mydomain = $PF_DOMAIN
	myorigin = \$myhostname
	mydestination =
	inet_interfaces = 127.0.0.1
	inet_protocols = ipv4
	mynetworks = 127.0.0.0/8
	alias_maps =
	alias_database =
	biff = no
	relay_domains = $PF_DOMAIN
	relay_transport = discard:relayed
	default_transport = discard:default
	local_transport = discard:local
	virtual_transport = discard:virtual
	smtp_dns_support_level = disabled
	disable_dns_lookups = yes
	smtpd_tls_cert_file = $dir/cert.pem
	smtpd_tls_key_file = $dir/key.pem
	smtpd_tls_security_level = may
	smtpd_tls_loglevel = 1
	smtp_tls_security_level = none
	EOF

	local l
	while IFS= read -r l; do
		[ -z "$l" ] && continue
		if [[ $l =~ ^[a-z0-9_]+[[:space:]]*= ]]; then
			postconf -c "$PF_CONF" -e "$l" ||
				_pf_fail "postconf -e '$l' failed" || return 1
		else
			printf '%s\n' "$l" >>"$PF_CONF/main.cf"
		fi
	done < <(_pf_lines PF_MAIN_EXTRA)

	cat >"$PF_CONF/master.cf" <<-EOF
	# service type  private unpriv  chroot  wakeup  maxproc command + args
	$(_pf_services)
	pickup    unix  n       -       n       60      1       pickup
	cleanup   unix  n       -       n       -       0       cleanup
	qmgr      unix  n       -       n       300     1       qmgr
	tlsmgr    unix  -       -       n       1000?   1       tlsmgr
	rewrite   unix  -       -       n       -       -       trivial-rewrite
	bounce    unix  -       -       n       -       0       bounce
	defer     unix  -       -       n       -       0       bounce
	trace     unix  -       -       n       -       0       bounce
	verify    unix  -       -       n       -       1       verify
	flush     unix  n       -       n       1000?   0       flush
	proxymap  unix  -       -       n       -       -       proxymap
	proxywrite unix -       -       n       -       1       proxymap
	smtp      unix  -       -       n       -       -       smtp
	relay     unix  -       -       n       -       -       smtp
	showq     unix  n       -       n       -       -       showq
	error     unix  -       -       n       -       -       error
	retry     unix  -       -       n       -       -       error
	discard   unix  -       -       n       -       -       discard
	local     unix  -       n       n       -       -       local
	virtual   unix  -       n       n       -       -       virtual
	lmtp      unix  -       -       n       -       -       lmtp
	anvil     unix  -       -       n       -       1       anvil
	scache    unix  -       -       n       -       1       scache
	postlog   unix-dgram n  -       n       -       1       postlogd
	EOF
	# drop the empty lines left by unset option hooks
	sed -i '/^[[:space:]]*$/d' "$PF_CONF/master.cf"
	_pf_lines PF_MASTER_EXTRA >>"$PF_CONF/master.cf"

	# `postfix check` also creates the queue directories (post-install).
	postfix -c "$PF_CONF" check >"$dir/check.out" 2>&1 ||
		_pf_fail "postfix check failed: $(cat "$dir/check.out")" || return 1
	at_exit pf_stop
	postfix -c "$PF_CONF" start >"$dir/start.out" 2>&1 ||
		_pf_fail "postfix start failed: $(cat "$dir/start.out")" || return 1

	export PF_MASTER_PID
	PF_MASTER_PID=$(awk '{ print $1; exit }' "$dir/spool/pid/master.pid")
	wait_port "$PF_PORT_MX" && return 0
	_pf_fail "port $PF_PORT_MX does not accept connections"
}

# _pf_pids: pids of the processes of this instance. master calls setsid(),
# so they are the session whose id is master's pid, which pf_start saved in
# PF_MASTER_PID (/proc/PID/environ, with the MAIL_CONFIG the daemons inherit,
# is not readable in every sandbox, so it is not used).
_pf_pids() {
	[ -n "${PF_MASTER_PID:-}" ] || return 0
	ps -eo pid=,sid= | awk -v s="$PF_MASTER_PID" '$2 == s { print $1 }'
}

pf_stop() {
	[ -n "${PF_CONF:-}" ] && [ -f "$PF_CONF/main.cf" ] || return 0
	postfix -c "$PF_CONF" stop >/dev/null 2>&1
	local i pids
	for i in $(seq 50); do
		pids=$(_pf_pids)
		[ -z "$pids" ] && break
		sleep 0.1
	done
	# shellcheck disable=SC2086
	[ -n "$pids" ] && kill -9 $pids 2>/dev/null
	PF_MASTER_PID=
	return 0
}

pf_restart() {
	pf_stop
	postfix -c "$PF_CONF" start >"$PF_DIR/start.out" 2>&1 ||
		_pf_fail "postfix start failed: $(cat "$PF_DIR/start.out")" || return 1
	PF_MASTER_PID=$(awk '{ print $1; exit }' "$PF_DIR/spool/pid/master.pid")
	wait_port "$PF_PORT_MX" && return 0
	_pf_fail "port $PF_PORT_MX does not accept connections"
}

# pf_wait_log REGEX [TIMEOUT]: wait until the maillog matches (extended RE)
pf_wait_log() {
	local re=$1 t=${2:-10} i
	for i in $(seq $((t * 10))); do
		grep -Eq -- "$re" "$PF_LOG" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "# pf_wait_log: no match for /$re/ in $t s" >&2
	return 1
}

pf_queue_empty() {
	postqueue -c "$PF_CONF" -p 2>/dev/null | grep -q '^Mail queue is empty'
}

pf_flush() { postqueue -c "$PF_CONF" -f; }

# pf_queue_ids: each once (showq may list a file twice, or miss it, while
# it moves between queues)
pf_queue_ids() {
	postqueue -c "$PF_CONF" -j 2>/dev/null | sed -n 's/.*"queue_id": *"\([0-9A-Za-z]*\)".*/\1/p' | sort -u
}
