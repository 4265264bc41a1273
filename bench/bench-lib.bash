# bench-lib.bash - shared set-up of the delivery benchmarks (sourced by
# bench/lmtp-bench and bench/e2e-bench after tests/lib/tap.sh and pg.sh).
#
#   bl_user                    create (once) the unprivileged user
#                              $BL_USER (postroom-bench) the peers run as
#   bl_messages DIR [N]        the message set (bench/gen-messages): the
#                              corpus (tests/corpus) + N synthetic (default 2000)
#   bl_dovecot_start DIR       a private Dovecot 2.3 with only the LMTP
#                              service: own base_dir, static userdb (every
#                              local part accepted, all as $BL_USER), one
#                              Maildir per user under DIR/mail, Dovecot's
#                              default fsync settings (mail_fsync =
#                              optimized); the lmtp processes run as
#                              $BL_USER. Exports DOVE_SOCK, DOVE_PID,
#                              DOVE_MAIL (DIR/mail); stopped at exit
#   bl_lmtpd_start DIR [LINE...]  postroom-lmtpd -f with the database of
#                              $POSTROOM_CONF, listening on unix:DIR/lmtp
#                              (mode 0666), as the cluster's owner, extra
#                              libconfig LINES in its lmtpd group
#                              (e.g. "pool_size = 8;"). Exports LMTPD_SOCK,
#                              LMTPD_PID, LMTPD_CONF, LMTPD_LOG,
#                              LMTPD_METRICS; stopped at exit
#   bl_stop PID                SIGTERM, wait up to 10 s, then SIGKILL
#   bl_maildir_count DIR       files in every new/ and cur/ below DIR
#   bl_wait_for N SECONDS CMD...  poll CMD (prints a number) every 0.1 s
#                              until it reaches N; prints the seconds
#                              waited (the timeout when it never does)
#   bl_ratio A B [SCALE]       A / B, "n/a" when B is 0 or empty
#   bl_hwm PID                 peak RSS (VmHWM, KiB) of a running process
#   bl_busy                    jiffies every CPU spent busy since boot (user,
#                              nice, system, irq, softirq, steal: /proc/stat)
#   bl_cpu_ms J0 J1 N          ms of CPU a unit from two bl_busy readings
#                              and N units (N of 0 counts as 1)

BL_USER=${BL_USER:-postroom-bench}
BL_SECRET=${BL_SECRET:-bench-secret-0123456789abcdef0123456789abcdef}

bl_user() {
	id "$BL_USER" >/dev/null 2>&1 ||
		useradd --system --no-create-home --shell /usr/sbin/nologin "$BL_USER"
}

bl_messages() {
	python3 "$POSTROOM_SRCDIR/bench/gen-messages" --corpus "$POSTROOM_SRCDIR/tests/corpus" \
		--synthetic "${2:-2000}" "$1" 2>/dev/null
}

bl_dovecot_start() {
	local d=$1 i
	bl_user
	mkdir -p "$d/run" "$d/state" "$d/mail" && chmod 755 "$d"
	chown "$BL_USER" "$d/mail"
	cat >"$d/dovecot.conf" <<-EOF
	# private LMTP-only instance written by bench/bench-lib.bash
	protocols = lmtp
	base_dir = $d/run
	state_dir = $d/state
	log_path = $d/dovecot.log
	ssl = no
	postmaster_address = postmaster@example.com
	mail_location = maildir:~/Maildir
	lmtp_save_to_detail_mailbox = no
	userdb {
	  driver = static
	  args = uid=$BL_USER gid=$BL_USER home=$d/mail/%Lu
	}
	passdb {
	  driver = static
	  args = nopassword
	}
	service lmtp {
	  user = $BL_USER
	  unix_listener lmtp {
	    mode = 0666
	  }
	}
	EOF
	dovecot -c "$d/dovecot.conf" -F >"$d/stdout" 2>&1 &
	DOVE_PID=$!
	at_exit "bl_stop $DOVE_PID"
	DOVE_SOCK=$d/run/lmtp DOVE_MAIL=$d/mail
	export DOVE_SOCK DOVE_PID DOVE_MAIL
	for i in $(seq 100); do [ -S "$DOVE_SOCK" ] && return 0; sleep 0.1; done
	echo "dovecot did not start:" >&2
	cat "$d/stdout" "$d/dovecot.log" >&2
	return 1
}

bl_lmtpd_start() {
	local d=$1 i port
	shift
	declare -F free_port >/dev/null || . "$POSTROOM_SRCDIR/tests/lib/ports.sh"
	mkdir -p "$d" && chmod 755 "$d"
	port=$(free_port) || return 1
	LMTPD_SOCK=$d/lmtp LMTPD_CONF=$d/lmtpd.conf LMTPD_LOG=$d/lmtpd.log
	LMTPD_METRICS=127.0.0.1:$port
	{
		grep -v '^[[:space:]]*\(lmtpd\|security\)[[:space:]]*=' "$POSTROOM_CONF"
		printf 'security = { hmac_secret = "%s"; };\n' "$BL_SECRET"
		printf 'lmtpd = { listen = "unix:%s"; socket_mode = "0666"; socket_owner = ""; socket_group = ""; user = "%s"; metrics_listen = "%s"; %s };\n' \
			"$LMTPD_SOCK" "${PG_RUNAS:-}" "$LMTPD_METRICS" "$*"
	} >"$LMTPD_CONF"
	chmod 600 "$LMTPD_CONF" && chown "${PG_RUNAS:-root}" "$LMTPD_CONF"
	"$POSTROOM_BUILDDIR/postroom-lmtpd" -f -c "$LMTPD_CONF" >>"$LMTPD_LOG" 2>&1 &
	LMTPD_PID=$!
	at_exit "bl_stop $LMTPD_PID"
	export LMTPD_SOCK LMTPD_PID LMTPD_CONF LMTPD_LOG LMTPD_METRICS
	for i in $(seq 100); do
		[ -S "$LMTPD_SOCK" ] && return 0
		kill -0 "$LMTPD_PID" 2>/dev/null || break
		sleep 0.1
	done
	echo "postroom-lmtpd did not start:" >&2
	cat "$LMTPD_LOG" >&2
	return 1
}

bl_stop() {
	declare -F stop_pid >/dev/null || . "$POSTROOM_SRCDIR/tests/lib/ports.sh"
	stop_pid "$1" TERM 100
}

bl_maildir_count() {
	find "$1" -path '*/new/*' -type f -o -path '*/cur/*' -type f 2>/dev/null | wc -l
}

bl_wait_for() {
	local n=$1 limit=$2 start got
	shift 2
	start=$EPOCHREALTIME
	while :; do
		got=$("$@" 2>/dev/null)
		[ "${got:-0}" -ge "$n" ] && break
		[ "$(echo "$EPOCHREALTIME - $start > $limit" | bc)" = 1 ] && break
		sleep 0.1
	done
	echo "$EPOCHREALTIME - $start" | bc
}

bl_ratio() {
	local a=$1 b=$2 scale=${3:-2}
	if [ -z "$a" ] || [ -z "$b" ] || [ "$(echo "$b == 0" | bc 2>/dev/null)" != 0 ]; then
		echo n/a
	else
		printf "%.${scale}f\n" "$(echo "scale=6; $a / $b" | bc)"
	fi
}

bl_hwm() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status"; }

bl_busy() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }

bl_cpu_ms() {
	local n=$3
	[ "$n" -gt 0 ] || n=1
	echo "scale=3; ($2 - $1) * 1000 / $(getconf CLK_TCK) / $n" | bc
}
