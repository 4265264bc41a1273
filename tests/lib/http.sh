# http.sh - shell wrappers around tests/lib/httprec.py (source after tap.sh).
#
# http_rec_start [--status N] [--hang]
#     start a recorder on a free 127.0.0.1 port; exports HTTP_REC_PORT,
#     HTTP_REC_URL (http://127.0.0.1:PORT), HTTP_REC_OUT (the JSON-lines
#     file of recorded requests), HTTP_REC_PID; stopped by at_exit (or
#     http_rec_stop). One recorder at a time per script (a second call
#     replaces the variables; both are still stopped at exit).
# http_rec_count      number of requests recorded so far
# http_rec_wait N [T] wait up to T seconds (5) until N requests are recorded
#
# Listens on 127.0.0.1 only; never sends a request itself.

_HTTP_REC_N=0

http_rec_start() {
	local i dir
	_HTTP_REC_N=$((_HTTP_REC_N + 1))
	dir=$TAP_TMP/httprec.$_HTTP_REC_N
	mkdir -p "$dir" || return 1
	export HTTP_REC_OUT=$dir/requests.jsonl HTTP_REC_PORT HTTP_REC_URL HTTP_REC_PID
	: >"$HTTP_REC_OUT"
	python3 "$(dirname "${BASH_SOURCE[0]}")/httprec.py" --port 0 \
		--port-file "$dir/port" --out "$HTTP_REC_OUT" "$@" \
		>/dev/null 2>"$dir/stderr" &
	HTTP_REC_PID=$!
	at_exit "http_rec_stop $HTTP_REC_PID"
	for i in $(seq 100); do
		[ -s "$dir/port" ] && break
		kill -0 "$HTTP_REC_PID" 2>/dev/null || break
		sleep 0.05
	done
	[ -s "$dir/port" ] || {
		echo "# http_rec_start: recorder did not start: $(cat "$dir/stderr")" >&2
		return 1
	}
	HTTP_REC_PORT=$(cat "$dir/port")
	HTTP_REC_URL=http://127.0.0.1:$HTTP_REC_PORT
}

# http_rec_stop [PID]: stop the recorder PID (default the last started)
http_rec_stop() {
	local pid=${1:-${HTTP_REC_PID:-}}
	[ -n "$pid" ] || return 0
	kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	return 0
}

http_rec_count() {
	if [ -f "${HTTP_REC_OUT:-}" ]; then wc -l <"$HTTP_REC_OUT" | tr -d ' '
	else echo 0; fi
}

http_rec_wait() {
	local n=$1 t=${2:-5} i
	for i in $(seq $((t * 20))); do
		[ "$(http_rec_count)" -ge "$n" ] && return 0
		sleep 0.05
	done
	return 1
}
