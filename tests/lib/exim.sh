# exim.sh - a private Exim 4.96 for tests, unpacked from Debian's packages
# (they conflict with postfix, so they are never installed). Source after
# tap.sh. Needs root, apt-get and dpkg (dpkg -x).
#
# exim_prepare        download exim4-daemon-heavy, exim4-base, exim4-config
#                     with `apt-get download` into $EXIM_CACHE (default
#                     ${POSTROOM_CACHE:-$POSTROOM_SRCDIR/.cache}/exim, reused
#                     when there), `dpkg -x` them to $EXIM_CACHE/unpacked, apt-get
#                     install the missing libraries of its Depends:, create
#                     user/group Debian-exim if missing; exports EXIM_BIN.
# exim_conf_minimal DIR  write DIR/exim.conf (spool and logs under DIR,
#                     primary_hostname exim.postroom.test, an ACL accepting
#                     RCPT for $EXIM_DOMAIN (postroom.test) from anyone and
#                     relaying for 127.0.0.1, a "deny" for rejected@DOMAIN)
#                     plus the lines of EXIM_CONF_EXTRA (array or string)
#                     appended to the main section (before "begin acl"); an
#                     extra "name = value" (or "hostlist name = ...") replaces
#                     the default of that name, since Exim refuses an option
#                     set twice. Prints the file's path. For other ACLs or
#                     routers, write your own file from this one. Mail is never delivered: the
#                     only router sends everything to a :blackhole: redirect.
# exim_run CONF ARGS... run "$EXIM_BIN -C CONF ARGS" (e.g. -bh 127.0.0.1,
#                     -bs, -bV).
# exim_daemon CONF    run `exim -bdf -oX PORT` (in the foreground, as a
#                     background job) on a free 127.0.0.1 port; exports
#                     EXIM_PORT, EXIM_PID; waits until it listens; stops it
#                     with at_exit (or call exim_daemon_stop). Its stderr
#                     goes to daemon.stderr beside CONF.
#
# exim_daemon_listen CONF PORT [ARGS...]  run `exim -bdf ARGS` (background
#                     job) on the ports and addresses CONF itself sets
#                     (daemon_smtp_ports, local_interfaces: no -oX), e.g.
#                     ARGS -odq to leave deliveries to queue runs started as
#                     root (exim -C CONF -qff); waits until 127.0.0.1:PORT
#                     listens; exports EXIM_PID; stopped with at_exit (or
#                     exim_daemon_stop).
#
# It must never install exim4 packages, touch /etc/exim4 or a system MTA,
# or talk to anything but 127.0.0.1.
#
# Findings (Debian 12, as root): Exim resolves its compiled-in user
# "Debian-exim" at start, so the user must exist even with -C. A -C config
# is accepted without TRUSTED_CONFIG_LIST when the caller is root, provided
# the file is owned by root and not writable by group/other (so the conf is
# chowned root and chmod 644). exim_path is set to $EXIM_BIN so that the
# daemon's re-execs (delivery, -bd children) find this binary; they pass -C
# on. The setuid bit of the unpacked binary is removed: it is run as root.
# Re-execs by the exim user with -C log "exim user lost privilege for using
# -C option" (the conf is not in /etc/exim4/trusted_configs, which is left
# alone): deliveries then run as Debian-exim, fine for smtp/lmtp/blackhole
# transports, not for local mailbox deliveries as other users.

: "${EXIM_DOMAIN:=postroom.test}"

exim_prepare() {
	local cache=${EXIM_CACHE:-${POSTROOM_CACHE:-$POSTROOM_SRCDIR/.cache}/exim}
	local pkgs="exim4-daemon-heavy exim4-base exim4-config" p
	mkdir -p "$cache" || return 1
	export EXIM_CACHE=$cache EXIM_BIN=$cache/unpacked/usr/sbin/exim4
	local have=1
	for p in $pkgs; do ls "$cache/${p}_"*.deb >/dev/null 2>&1 || have=0; done
	if [ "$have" = 0 ]; then
		# apt-get download as root into a dir _apt cannot read only warns
		(cd "$cache" && apt-get download -q $pkgs) >"$cache/download.log" 2>&1 ||
			{ apt-get update -q >/dev/null 2>&1 &&
			  (cd "$cache" && apt-get download -q $pkgs) >"$cache/download.log" 2>&1; } ||
			{ echo "# exim_prepare: apt-get download failed" >&2
			  sed 's/^/#   /' "$cache/download.log" >&2; return 1; }
	fi
	if [ ! -x "$EXIM_BIN" ]; then
		rm -rf "$cache/unpacked.tmp" && mkdir "$cache/unpacked.tmp" || return 1
		for p in "$cache"/*.deb; do dpkg -x "$p" "$cache/unpacked.tmp" || return 1; done
		chmod u-s "$cache/unpacked.tmp/usr/sbin/exim4"
		rm -rf "$cache/unpacked" && mv "$cache/unpacked.tmp" "$cache/unpacked" || return 1
	fi

	# the libraries of Depends: (first alternative, no version), not the
	# exim packages nor debconf; install only what is missing
	local deps missing=
	deps=$(dpkg-deb -f "$cache"/exim4-daemon-heavy_*.deb Depends | tr ',' '\n' |
		sed 's/|.*//; s/(.*)//; s/[[:space:]]//g' |
		grep -Ev '^(exim4-|debconf)' | grep .)
	for p in $deps; do
		dpkg-query -W -f '${db:Status-Status}\n' "$p" 2>/dev/null | grep -qx installed ||
			missing="$missing $p"
	done
	if [ -n "$missing" ]; then
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
			$missing >"$cache/install.log" 2>&1 ||
			{ echo "# exim_prepare: apt-get install$missing failed" >&2
			  tail -n 20 "$cache/install.log" | sed 's/^/#   /' >&2; return 1; }
	fi

	getent group Debian-exim >/dev/null || groupadd --system Debian-exim || return 1
	getent passwd Debian-exim >/dev/null ||
		useradd --system -g Debian-exim -d /var/spool/exim4 -M \
			-s /usr/sbin/nologin Debian-exim || return 1

	ldd "$EXIM_BIN" | grep -q 'not found' &&
		{ echo "# exim_prepare: missing libraries:" >&2; ldd "$EXIM_BIN" | grep 'not found' >&2; return 1; }
	return 0
}

# _exim_key LINE: the option (or "hostlist NAME") a main-section line sets
_exim_key() {
	[[ $1 =~ ^(((domain|host|address|localpart)list[[:space:]]+)?[a-z0-9_]+)[[:space:]]*= ]] &&
		echo "${BASH_REMATCH[1]}"
}

exim_conf_minimal() {
	local dir=$1 l k extra=() keys=" "
	mkdir -p "$dir/spool" "$dir/log" && dir=$(cd "$dir" && pwd) || return 1
	chown -R Debian-exim:Debian-exim "$dir/spool" "$dir/log" || return 1
	if declare -p EXIM_CONF_EXTRA 2>/dev/null | grep -q '^declare -a'; then
		extra=("${EXIM_CONF_EXTRA[@]}")
	elif [ -n "${EXIM_CONF_EXTRA:-}" ]; then
		mapfile -t extra <<<"$EXIM_CONF_EXTRA"
	fi
	for l in "${extra[@]}"; do k=$(_exim_key "$l") && keys="$keys$k "; done
	{
		echo "# private test config written by tests/lib/exim.sh"
		# defaults, less those an extra line sets (Exim refuses an option
		# set twice)
		while IFS= read -r l; do
			k=$(_exim_key "$l") && [[ $keys == *" $k "* ]] && continue
			printf '%s\n' "$l"
		done <<-EOF
		exim_path = $EXIM_BIN
		keep_environment =
		spool_directory = $dir/spool
		log_file_path = $dir/log/%slog
		exim_user = Debian-exim
		exim_group = Debian-exim
		primary_hostname = exim.$EXIM_DOMAIN
		domainlist local_domains = $EXIM_DOMAIN
		hostlist relay_from_hosts = 127.0.0.1
		daemon_smtp_ports = 25
		local_interfaces = 127.0.0.1
		disable_ipv6 = true
		host_lookup =
		rfc1413_hosts =
		tls_advertise_hosts =
		acl_smtp_rcpt = acl_check_rcpt
		acl_smtp_data = acl_check_data
		EOF
		[ ${#extra[@]} -gt 0 ] && printf '%s\n' "${extra[@]}"
		cat <<-'EOF'

		begin acl

		acl_check_rcpt:
		  deny    message = rejected by test ACL
		          local_parts = rejected
		  accept  domains = +local_domains
		  accept  hosts = +relay_from_hosts
		  deny    message = relay not permitted

		acl_check_data:
		  accept

		begin routers

		blackhole:
		  driver = redirect
		  data = :blackhole:

		begin transports
		EOF
	} >"$dir/exim.conf"
	chown root:root "$dir/exim.conf" && chmod 644 "$dir/exim.conf"
	echo "$dir/exim.conf"
}

exim_run() {
	local conf=$1; shift
	"$EXIM_BIN" -C "$conf" "$@"
}

exim_daemon() {
	local conf=$1
	declare -F free_port >/dev/null ||
		. "$(dirname "${BASH_SOURCE[0]}")/ports.sh"
	export EXIM_PORT EXIM_PID
	EXIM_PORT=$(free_port) || return 1
	"$EXIM_BIN" -C "$conf" -bdf -oX "$EXIM_PORT" -oP /dev/null </dev/null \
		2>>"$(dirname "$conf")/daemon.stderr" &
	EXIM_PID=$!
	at_exit exim_daemon_stop
	wait_port "$EXIM_PORT" "$EXIM_PID" && return 0
	echo "# exim_daemon: port $EXIM_PORT not listening" >&2
	return 1
}

exim_daemon_listen() {
	local conf=$1 port=$2
	shift 2
	declare -F wait_port >/dev/null ||
		. "$(dirname "${BASH_SOURCE[0]}")/ports.sh"
	export EXIM_PID
	"$EXIM_BIN" -C "$conf" -bdf -oP /dev/null "$@" </dev/null \
		2>>"$(dirname "$conf")/daemon.stderr" &
	EXIM_PID=$!
	at_exit exim_daemon_stop
	wait_port "$port" "$EXIM_PID" && return 0
	echo "# exim_daemon_listen: port $port not listening" >&2
	sed 's/^/#   /' "$(dirname "$conf")/daemon.stderr" >&2
	return 1
}

# exim_daemon_stop: SIGTERM the daemon (its session children exit with it)
exim_daemon_stop() {
	[ -n "${EXIM_PID:-}" ] || return 0
	kill "$EXIM_PID" 2>/dev/null
	wait "$EXIM_PID" 2>/dev/null
	EXIM_PID=
	return 0
}
