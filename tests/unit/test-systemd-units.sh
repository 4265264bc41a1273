#!/usr/bin/env bash
# test-systemd-units.sh - contrib/systemd: the units are valid for systemd,
# start the programs with options they have, and leave writable exactly the
# directories the daemons put their default sockets in.
#
# For each contrib/systemd/*.service of a daemon:
#   - `systemd-analyze verify` accepts it (on a copy whose /usr/sbin/ is
#     the build directory, so the commands exist; the copy must differ
#     from the unit in nothing else);
#   - every option in its ExecStart/ExecStartPre lines is one the program's
#     usage (-h) lists and its man page's SYNOPSIS names;
#   - the directory of the daemon's default unix socket (from
#     `postroomctl config params`) is in ReadWritePaths (ProtectSystem=strict
#     makes everything else read-only) and is made by tmpfiles.d or by
#     Postfix (/var/spool/postfix/private);
#   - the daemon starts as root and drops privileges itself, so there is no
#     User=, and the capability bounding set holds CAP_SETUID/CAP_SETGID;
#   - `systemd-analyze security --offline=true` rates it below 3.0.
# postroom-purge.service and .timer (postroomctl mail purge, daily): verify
# and security as above, a oneshot as user postroom without capabilities,
# running a command postroomctl has.
# postroom-webhookd.service (no socket, no privilege drop): verify and
# security as above, the Exec options in its -h and SYNOPSIS, in the
# foreground, as user postroom without capabilities.
# Skipped (TAP "# SKIP") only when systemd-analyze is not installed.
. "$(dirname "$0")/../lib/tap.sh"

UNITS=$POSTROOM_SRCDIR/contrib/systemd
TMPFILES=$UNITS/postroom.conf
SA=$(command -v systemd-analyze || true)

# unit_param UNIT - the postroom.conf parameter holding its socket
unit_param() {
	case $1 in
	postroom-authd) echo authd.listen ;;
	postroom-milter) echo milter.socket ;;
	postroom-policyd) echo policyd.listen ;;
	postroom-lmtpd) echo lmtpd.listen ;;
	esac
}

# param_default NAME - the default of a configuration parameter
param_default() {
	"$POSTROOM_BUILDDIR/postroomctl" config params 2>/dev/null |
		awk -F '\t' -v n="$1" '$1 == n { print $3 }'
}

# exec_options FILE PROG - the option words of its Exec lines for PROG
exec_options() {
	grep -E "^Exec(Start|StartPre)=/usr/sbin/$2 " "$1" |
		tr ' ' '\n' | grep -E '^-[a-zA-Z]$' | sort -u
}

# the daemons' units (postroom-purge, a oneshot of postroomctl, at the end)
units=$(ls "$UNITS"/*.service | grep -Ev '/postroom-(purge|webhookd)\.service$')
is "$(echo "$units" | wc -l)" 4 "four daemon units (authd, milter, policyd, lmtpd)"
ok "[ -f '$TMPFILES' ]" "tmpfiles.d file contrib/systemd/postroom.conf exists"

for unit in $units; do
	name=$(basename "$unit" .service)
	bin=$POSTROOM_BUILDDIR/$name
	man=$POSTROOM_SRCDIR/doc/$name.8

	# --- systemd-analyze verify -------------------------------------------
	if [ -z "$SA" ]; then
		pass "$name: verify # SKIP systemd-analyze not installed"
	elif [ ! -x "$bin" ]; then
		pass "$name: verify # SKIP $bin not built"
	else
		mkdir -p "$TAP_TMP/v"
		sed "s|/usr/sbin/|$POSTROOM_BUILDDIR/|g" "$unit" >"$TAP_TMP/v/$name.service"
		changed=$(diff "$unit" "$TAP_TMP/v/$name.service" | grep -E '^[<>]' |
			grep -Evc '^[<>] Exec(Start|StartPre)=')
		is "$changed" 0 "$name: the verified copy differs only in the Exec paths"
		if (cd "$TAP_TMP/v" && "$SA" verify --man=no "./$name.service") \
			>"$TAP_TMP/verify.out" 2>&1 && [ ! -s "$TAP_TMP/verify.out" ]; then
			pass "$name: systemd-analyze verify is silent"
		else
			fail "$name: systemd-analyze verify is silent" "$(cat "$TAP_TMP/verify.out")"
		fi
		exposure=$(cd "$TAP_TMP/v" && "$SA" security --offline=true "./$name.service" 2>&1 |
			sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
		ok "[ -n '$exposure' ] && awk 'BEGIN { exit !($exposure < 3.0) }'" \
			"$name: systemd-analyze security exposure $exposure < 3.0"
	fi

	# --- the options of the Exec lines exist -------------------------------
	opts=$(exec_options "$unit" "$name")
	ok "[ -n '$opts' ]" "$name: ExecStart runs /usr/sbin/$name with options"
	ok "grep -Eq '^ExecStart=/usr/sbin/$name .*-f( |\$)' '$unit'" \
		"$name: ExecStart keeps it in the foreground (-f)"
	if [ -x "$bin" ]; then
		usage=$("$bin" -h 2>&1)
		for o in $opts; do
			like "$usage" "(^|$(printf '\n'))  $o( |\$)" "$name: $o is in '$name -h'"
		done
	else
		pass "$name: options in -h # SKIP $bin not built"
	fi
	if [ -s "$man" ]; then
		synopsis=$(sed -n '/^\.SH SYNOPSIS/,/^\.SH/p' "$man")
		for o in $opts; do
			like "$synopsis" "\\\\$o" "$name: $o is in the SYNOPSIS of doc/$name.8"
		done
	else
		pass "$name: options in the man page # SKIP doc/$name.8 not written yet"
	fi

	# --- privileges: root at start, dropped by the daemon ------------------
	ok "! grep -Eq '^(User|DynamicUser)=' '$unit'" \
		"$name: no User= (it opens its socket as root and drops itself)"
	ok "grep -Eq '^CapabilityBoundingSet=.*CAP_SETUID' '$unit' && grep -Eq '^CapabilityBoundingSet=.*CAP_SETGID' '$unit'" \
		"$name: capability bounding set allows the privilege drop"
	for opt in NoNewPrivileges=yes ProtectSystem=strict ProtectHome=yes PrivateTmp=yes; do
		ok "grep -qx '$opt' '$unit'" "$name: $opt"
	done
	ok "grep -Eq '^RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6\$' '$unit'" \
		"$name: RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6"

	# --- the default socket's directory is writable and exists -------------
	param=$(unit_param "$name")
	default=$(param_default "$param")
	if [ -z "$default" ]; then
		pass "$name: socket directory # SKIP $param not in this build's parameters"
		continue
	fi
	case $default in
	unix:*|/*)
		path=${default#unix:}
		dir=$(dirname "$path")
		ok "grep -Eq '^ReadWritePaths=(.* )?-?$dir( |\$)' '$unit'" \
			"$name: ReadWritePaths has $dir (default $param)"
		if [ "$dir" = /var/spool/postfix/private ]; then
			pass "$name: $dir is made by the postfix package"
		else
			ok "grep -Eq '^d $dir [0-7]+ ' '$TMPFILES'" "$name: tmpfiles.d makes $dir"
		fi ;;
	*)
		ok "grep -q '^ReadWritePaths=-/run/postroom' '$unit'" \
			"$name: default $param is TCP; /run/postroom writable for a unix one"
		ok "grep -Eq '^d /run/postroom [0-7]+ ' '$TMPFILES'" "$name: tmpfiles.d makes /run/postroom" ;;
	esac
done

# --- postroom-webhookd.service: outgoing HTTP only, as postroom -----------
wh=$UNITS/postroom-webhookd.service
ok "[ -f '$wh' ]" "postroom-webhookd.service exists"
if [ -z "$SA" ]; then
	pass "postroom-webhookd: verify # SKIP systemd-analyze not installed"
elif [ ! -x "$POSTROOM_BUILDDIR/postroom-webhookd" ]; then
	pass "postroom-webhookd: verify # SKIP postroom-webhookd not built"
else
	mkdir -p "$TAP_TMP/w"
	sed "s|/usr/sbin/|$POSTROOM_BUILDDIR/|g" "$wh" >"$TAP_TMP/w/postroom-webhookd.service"
	changed=$(diff "$wh" "$TAP_TMP/w/postroom-webhookd.service" | grep -E '^[<>]' |
		grep -Evc '^[<>] Exec(Start|StartPre)=')
	is "$changed" 0 "postroom-webhookd: the verified copy differs only in the Exec paths"
	if (cd "$TAP_TMP/w" && "$SA" verify --man=no ./postroom-webhookd.service) \
		>"$TAP_TMP/verify.out" 2>&1 && [ ! -s "$TAP_TMP/verify.out" ]; then
		pass "postroom-webhookd: systemd-analyze verify is silent"
	else
		fail "postroom-webhookd: systemd-analyze verify is silent" "$(cat "$TAP_TMP/verify.out")"
	fi
	exposure=$(cd "$TAP_TMP/w" && "$SA" security --offline=true ./postroom-webhookd.service 2>&1 |
		sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
	ok "[ -n '$exposure' ] && awk 'BEGIN { exit !($exposure < 3.0) }'" \
		"postroom-webhookd: systemd-analyze security exposure $exposure < 3.0"
fi
opts=$(exec_options "$wh" postroom-webhookd)
ok "[ -n '$opts' ]" "postroom-webhookd: ExecStart runs /usr/sbin/postroom-webhookd with options"
ok "grep -Eq '^ExecStart=/usr/sbin/postroom-webhookd .*-f( |\$)' '$wh'" \
	"postroom-webhookd: ExecStart keeps it in the foreground (-f)"
if [ -x "$POSTROOM_BUILDDIR/postroom-webhookd" ]; then
	usage=$("$POSTROOM_BUILDDIR/postroom-webhookd" -h 2>&1)
	for o in $opts; do
		like "$usage" "(^|$(printf '\n'))  $o( |\$)" "postroom-webhookd: $o is in 'postroom-webhookd -h'"
	done
else
	pass "postroom-webhookd: options in -h # SKIP not built"
fi
synopsis=$(sed -n '/^\.SH SYNOPSIS/,/^\.SH/p' "$POSTROOM_SRCDIR/doc/postroom-webhookd.8")
for o in $opts; do
	like "$synopsis" "\\\\$o" "postroom-webhookd: $o is in the SYNOPSIS of doc/postroom-webhookd.8"
done
ok "grep -qx 'User=postroom' '$wh' && grep -qx 'CapabilityBoundingSet=' '$wh'" \
	"postroom-webhookd: runs as postroom with no capabilities"
for opt in NoNewPrivileges=yes ProtectSystem=strict ProtectHome=yes PrivateTmp=yes; do
	ok "grep -qx '$opt' '$wh'" "postroom-webhookd: $opt"
done
ok "grep -Eq '^RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6\$' '$wh'" \
	"postroom-webhookd: RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6"

# --- postroom-purge.service + .timer: postroomctl mail purge, daily -------
# verified like the daemons' units (a copy whose /usr/bin/postroomctl is
# the build's); a oneshot as the unprivileged user postroom, no
# capabilities; the command exists in postroomctl's usage.
purge=$UNITS/postroom-purge.service
timer=$UNITS/postroom-purge.timer
ok "[ -f '$purge' ] && [ -f '$timer' ]" "postroom-purge.service and postroom-purge.timer exist"
if [ -z "$SA" ]; then
	pass "postroom-purge: verify # SKIP systemd-analyze not installed"
elif [ ! -x "$POSTROOM_BUILDDIR/postroomctl" ]; then
	pass "postroom-purge: verify # SKIP postroomctl not built"
else
	mkdir -p "$TAP_TMP/p"
	sed "s|/usr/bin/postroomctl|$POSTROOM_BUILDDIR/postroomctl|g" "$purge" >"$TAP_TMP/p/postroom-purge.service"
	cp "$timer" "$TAP_TMP/p/postroom-purge.timer"
	changed=$(diff "$purge" "$TAP_TMP/p/postroom-purge.service" | grep -E '^[<>]' | grep -Evc '^[<>] ExecStart=')
	is "$changed" 0 "postroom-purge: the verified copy differs only in the ExecStart path"
	if (cd "$TAP_TMP/p" && "$SA" verify --man=no ./postroom-purge.service ./postroom-purge.timer) \
		>"$TAP_TMP/verify.out" 2>&1 && [ ! -s "$TAP_TMP/verify.out" ]; then
		pass "postroom-purge: systemd-analyze verify (service and timer) is silent"
	else
		fail "postroom-purge: systemd-analyze verify (service and timer) is silent" "$(cat "$TAP_TMP/verify.out")"
	fi
	exposure=$(cd "$TAP_TMP/p" && "$SA" security --offline=true ./postroom-purge.service 2>&1 |
		sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
	ok "[ -n '$exposure' ] && awk 'BEGIN { exit !($exposure < 3.0) }'" \
		"postroom-purge: systemd-analyze security exposure $exposure < 3.0"
fi
ok "grep -qx 'Type=oneshot' '$purge'" "postroom-purge: Type=oneshot"
ok "grep -Eq '^ExecStart=/usr/bin/postroomctl -c /etc/postroom/postroom.conf mail purge( |\$)' '$purge'" \
	"postroom-purge: ExecStart runs postroomctl mail purge"
if [ -x "$POSTROOM_BUILDDIR/postroomctl" ]; then
	like "$("$POSTROOM_BUILDDIR/postroomctl" --help 2>&1)" 'mail purge \[--dry-run\] \[--batch N\]' \
		"postroom-purge: 'mail purge' is in 'postroomctl --help'"
else
	pass "postroom-purge: mail purge in --help # SKIP postroomctl not built"
fi
ok "grep -qx 'User=postroom' '$purge' && grep -qx 'CapabilityBoundingSet=' '$purge'" \
	"postroom-purge: runs as postroom with no capabilities"
for opt in NoNewPrivileges=yes ProtectSystem=strict ProtectHome=yes PrivateTmp=yes; do
	ok "grep -qx '$opt' '$purge'" "postroom-purge: $opt"
done
ok "grep -Eq '^OnCalendar=' '$timer' && grep -qx 'Persistent=true' '$timer' && grep -qx 'WantedBy=timers.target' '$timer'" \
	"postroom-purge.timer: daily calendar, persistent, wanted by timers.target"
ok "! grep -q '^Unit=' '$timer'" "postroom-purge.timer: starts the service of its own name"

# tmpfiles.d syntax: systemd-tmpfiles parses it (into a scratch root)
if command -v systemd-tmpfiles >/dev/null; then
	mkdir -p "$TAP_TMP/sysroot/etc"
	getent passwd root postfix >"$TAP_TMP/sysroot/etc/passwd"
	echo "postroom:x:999:999::/:/usr/sbin/nologin" >>"$TAP_TMP/sysroot/etc/passwd"
	getent group root postfix >"$TAP_TMP/sysroot/etc/group"
	echo "postroom:x:999:" >>"$TAP_TMP/sysroot/etc/group"
	if systemd-tmpfiles --create --root="$TAP_TMP/sysroot" "$TMPFILES" >"$TAP_TMP/tmpf.out" 2>&1; then
		pass "systemd-tmpfiles --create accepts contrib/systemd/postroom.conf"
	else
		fail "systemd-tmpfiles --create accepts contrib/systemd/postroom.conf" "$(cat "$TAP_TMP/tmpf.out")"
	fi
	pfgid=$(getent group postfix | cut -d: -f3)
	is "$(stat -c '%a %u %g' "$TAP_TMP/sysroot/var/spool/postfix/postroom" 2>&1)" "750 999 $pfgid" \
		"tmpfiles: /var/spool/postfix/postroom is 0750 postroom:postfix"
else
	pass "tmpfiles.d # SKIP systemd-tmpfiles not installed"
fi

done_testing
