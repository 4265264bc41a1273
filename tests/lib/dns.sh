# dns.sh - a private DNS server on loopback for SPF and DNSBL tests
# (source after tap.sh and ports.sh). Uses Debian's dnsmasq-base as an
# authoritative-only server: every name it does not know is NXDOMAIN
# (--local=/#/), it never forwards a query anywhere and listens only on
# 127.0.0.1 on a free high port.
#
#   dns_start LINE...   start dnsmasq with the record options given
#                       (--txt-record=NAME,"TEXT", --host-record=NAME,IP,
#                       --mx-host=...), export DNS_PORT and DNS_SERVER
#                       (127.0.0.1:PORT); stopped with at_exit.
#   dns_blackhole       a UDP socket on 127.0.0.1 that never answers
#                       (timeouts); exports DNS_DEAD (127.0.0.1:PORT).
#   dns_query NAME TYPE ask DNS_SERVER with python (no dig needed)

dns_start() {
	local conf=$TAP_TMP/dnsmasq.conf opt
	DNS_PORT=$(free_port) || return 1
	export DNS_PORT DNS_SERVER=127.0.0.1:$DNS_PORT
	{
		echo "port=$DNS_PORT"
		echo "listen-address=127.0.0.1"
		echo "bind-interfaces"
		echo "no-resolv"
		echo "no-hosts"
		echo "no-poll"
		echo "local=/#/"
		echo "user=root"
		echo "log-facility=$TAP_TMP/dnsmasq.log"
		echo "log-queries"
		for opt in "$@"; do printf '%s\n' "${opt#--}"; done
	} >"$conf"
	dnsmasq --conf-file="$conf" --keep-in-foreground --pid-file= 2>>"$TAP_TMP/dnsmasq.err" &
	DNS_PID=$!
	at_exit "kill $DNS_PID; wait $DNS_PID"
	local i
	for i in $(seq 50); do
		dns_query probe.invalid A >/dev/null 2>&1 && return 0
		kill -0 "$DNS_PID" 2>/dev/null || break
		sleep 0.1
	done
	echo "# dns_start: dnsmasq did not come up: $(cat "$TAP_TMP/dnsmasq.err")" >&2
	return 1
}

dns_blackhole() {
	local port
	port=$(free_port) || return 1
	python3 -c 'import socket,sys,time
s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", int(sys.argv[1])))
time.sleep(900)' "$port" &
	DNS_DEAD_PID=$!
	at_exit "kill $DNS_DEAD_PID"
	export DNS_DEAD=127.0.0.1:$port
	sleep 0.2
}

# dns_query NAME TYPE: prints the rcode and answer count ("NOERROR 1")
dns_query() {
	python3 - "$1" "$2" "$DNS_PORT" <<'PY'
import socket, struct, sys, random
name, qtype, port = sys.argv[1], {"A": 1, "TXT": 16, "MX": 15}[sys.argv[2]], int(sys.argv[3])
qid = random.randint(0, 65535)
q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
for label in name.rstrip(".").split("."):
    q += bytes([len(label)]) + label.encode()
q += b"\0" + struct.pack(">HH", qtype, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(1)
s.sendto(q, ("127.0.0.1", port))
r = s.recv(4096)
rcode = r[3] & 15
print({0: "NOERROR", 2: "SERVFAIL", 3: "NXDOMAIN", 5: "REFUSED"}.get(rcode, str(rcode)),
      struct.unpack(">H", r[6:8])[0])
PY
}
