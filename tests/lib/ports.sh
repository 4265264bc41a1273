# ports.sh - free_port: print a TCP port that is free on 127.0.0.1;
# wait_port: wait for a daemon's port; stop_pid: stop a daemon for good.
# Source after tap.sh. Ports are picked at random below the kernel's
# ephemeral range (so outgoing connections do not steal them before the
# test binds them) and each is handed out at most once per script: the
# ports already given are remembered in a file under $TAP_TMP, because
# free_port is usually called in a $(...) subshell.
# Never binds anything but 127.0.0.1 and keeps no socket open.

free_port() {
	local used=${TAP_TMP:-/tmp}/.ports-used port
	port=$(python3 - "$used" <<'PY'
import random, socket, sys
used_file = sys.argv[1]
try:
    used = set(open(used_file).read().split())
except OSError:
    used = set()
for _ in range(200):
    p = random.randint(20000, 32000)
    if str(p) in used:
        continue
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", p))
    except OSError:
        continue
    finally:
        s.close()
    print(p)
    break
else:
    sys.exit("free_port: no free port found")
PY
) || return 1
	echo "$port" >>"$used"
	echo "$port"
}

# wait_port PORT [PID] - wait (up to 10 s) until 127.0.0.1:PORT accepts a
# connection: 0 when it does; 1 on time-out, or at once when PID is given
# and that process has died (the daemon failed to start).
wait_port() {
	local port=$1 pid=${2:-} i
	for i in $(seq 100); do
		(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
		[ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null && return 1
		sleep 0.1
	done
	return 1
}

# stop_pid PID [SIGNAL] [TENTHS] - send SIGNAL (default TERM) to PID, wait
# up to TENTHS tenths of a second (default 150) for it to exit, then
# SIGKILL it and reap it. Always 0 (a process already gone is stopped).
stop_pid() {
	local pid=$1 sig=${2:-TERM} tenths=${3:-150} i
	[ -n "$pid" ] || return 0
	kill -"$sig" "$pid" 2>/dev/null || return 0
	for i in $(seq "$tenths"); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	return 0
}
