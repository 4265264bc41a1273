# s3.bash - a real S3 server for the tests: Ceph's RADOS Gateway on a
# single-node Ceph cluster (one monitor, one OSD on memstore, size-1 pools)
# in $TAP_TMP/s3, started once per test file. Source after tap.sh and
# ports.sh. Debian packages: radosgw ceph-mon ceph-osd ceph-common
# (tools/install-deps). Takes 15-25 s on 2 cores (doc/BENCHMARKS.md).
#
# s3_start            start the cluster and radosgw on a free 127.0.0.1
#                     port; make a user with random keys. Exports
#                     S3_ENDPOINT (http://127.0.0.1:PORT), S3_PORT,
#                     S3_REGION, S3_ACCESS_KEY, S3_SECRET_KEY, S3_DIR.
#                     Stopped by at_exit (or s3_stop). 1 with a "# " line
#                     on stderr when it cannot start.
# s3_stop             kill radosgw, the OSD and the monitor
# s3_rgw_stop         stop radosgw only (the object store "down")
# s3_curl ARGS...     curl signed with the user's keys (AWS SigV4)
# s3_bucket_create B  create bucket B (0 on 200)
# s3_bucket_delete B  delete the (empty) bucket B
# s3_credentials_file FILE
#                     write the keys as a blobs.credentials_file (0640)
#
# Authentication is off inside the cluster (cephx none: nothing listens
# beyond 127.0.0.1); the S3 requests are checked as on any radosgw: a wrong
# secret gets 403 SignatureDoesNotMatch, a body that does not match its
# x-amz-content-sha256 gets 400.

S3_REGION=us-east-1
_S3_EMPTY_SHA=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855

# _s3_conf DIR MONPORT RGWPORT FSID - the cluster's ceph.conf
_s3_conf() {
	local d=$1 mon=$2 rgw=$3 fsid=$4
	cat <<EOF
[global]
fsid = $fsid
mon host = [v2:127.0.0.1:$mon]
mon initial members = a
public network = 127.0.0.0/8
auth cluster required = none
auth service required = none
auth client required = none
ms mon client mode = crc
ms client mode = crc
ms bind ipv6 = false
run dir = $d/run
admin socket = $d/run/\$name.asok
log file = $d/log/\$name.log
pid file = $d/run/\$name.pid
keyring = $d/keyring
osd pool default size = 1
osd pool default min size = 1
mon allow pool size one = true
mon warn on pool no redundancy = false
mon data avail warn = 1
mon data avail crit = 0
osd pool default pg autoscale mode = off
osd pool default pg num = 8
osd pool default pgp num = 8
osd crush chooseleaf type = 0
[mon]
mon data = $d/mon/\$id
[osd]
osd data = $d/osd/\$id
osd objectstore = memstore
memstore device bytes = 1073741824
osd max object name len = 256
osd max object namespace len = 64
[client.rgw]
rgw frontends = beast endpoint=127.0.0.1:$rgw
rgw thread pool size = 16
rgw enable gc threads = false
rgw enable lc threads = false
rgw dynamic resharding = false
EOF
}

_s3_fail() {
	echo "# s3_start: $1 (logs: $S3_DIR/log)" >&2
	[ -f "$S3_DIR/log/client.rgw.log" ] && tail -5 "$S3_DIR/log/client.rgw.log" | sed 's/^/#   /' >&2
	return 1
}

s3_start() {
	local d=$TAP_TMP/s3 mon rgw fsid osd_uuid i c
	for c in ceph-mon ceph-osd radosgw radosgw-admin monmaptool ceph-authtool ceph uuidgen; do
		command -v "$c" >/dev/null || { echo "# s3_start: $c missing (tools/install-deps)" >&2; return 1; }
	done
	export S3_DIR=$d S3_PORT S3_ENDPOINT S3_REGION S3_ACCESS_KEY S3_SECRET_KEY
	mkdir -p "$d/run" "$d/log" "$d/mon" "$d/osd/0" || return 1
	mon=$(free_port) && rgw=$(free_port) || return 1
	fsid=$(uuidgen)
	_s3_conf "$d" "$mon" "$rgw" "$fsid" >"$d/ceph.conf"
	at_exit s3_stop
	ceph-authtool --create-keyring "$d/keyring" --gen-key -n mon. --cap mon 'allow *' \
		>/dev/null 2>&1 || { _s3_fail "ceph-authtool failed"; return 1; }
	monmaptool --create --addv a "[v2:127.0.0.1:$mon]" --fsid "$fsid" "$d/monmap" \
		>/dev/null 2>&1 || { _s3_fail "monmaptool failed"; return 1; }
	ceph-mon -c "$d/ceph.conf" --mkfs -i a --monmap "$d/monmap" --keyring "$d/keyring" \
		>"$d/log/mkfs.out" 2>&1 || { _s3_fail "ceph-mon --mkfs failed"; return 1; }
	ceph-mon -c "$d/ceph.conf" -i a >>"$d/log/mkfs.out" 2>&1 ||
		{ _s3_fail "ceph-mon did not start"; return 1; }
	osd_uuid=$(uuidgen)
	timeout 60 ceph -c "$d/ceph.conf" osd new "$osd_uuid" >/dev/null 2>>"$d/log/mkfs.out" ||
		{ _s3_fail "ceph osd new failed (monitor not answering)"; return 1; }
	ceph-osd -c "$d/ceph.conf" -i 0 --mkfs --osd-uuid "$osd_uuid" >>"$d/log/mkfs.out" 2>&1 ||
		{ _s3_fail "ceph-osd --mkfs failed"; return 1; }
	ceph-osd -c "$d/ceph.conf" -i 0 >>"$d/log/mkfs.out" 2>&1 ||
		{ _s3_fail "ceph-osd did not start"; return 1; }
	# radosgw forks into the background once connected to the cluster
	timeout 90 radosgw -c "$d/ceph.conf" -n client.rgw >>"$d/log/mkfs.out" 2>&1 ||
		{ _s3_fail "radosgw did not start"; return 1; }
	S3_PORT=$rgw
	S3_ENDPOINT=http://127.0.0.1:$rgw
	# it answers once its pools exist
	for i in $(seq 900); do
		curl -s -o /dev/null --max-time 2 "$S3_ENDPOINT/" && break
		sleep 0.1
	done
	curl -s -o /dev/null --max-time 2 "$S3_ENDPOINT/" || { _s3_fail "radosgw does not answer"; return 1; }
	S3_ACCESS_KEY=PR$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n' | tr a-f A-F)
	S3_SECRET_KEY=$(od -An -N20 -tx1 /dev/urandom | tr -d ' \n')
	timeout 60 radosgw-admin -c "$d/ceph.conf" user create --uid postroom-test \
		--display-name postroom-test --access-key "$S3_ACCESS_KEY" --secret "$S3_SECRET_KEY" \
		>/dev/null 2>>"$d/log/mkfs.out" || { _s3_fail "radosgw-admin user create failed"; return 1; }
}

# _s3_pid NAME - the pid of a daemon of the cluster (mon.a, osd.0, client.rgw)
_s3_pid() { cat "$S3_DIR/run/$1.pid" 2>/dev/null; }

s3_rgw_stop() { stop_pid "$(_s3_pid client.rgw)"; }

# (SIGKILL: the cluster lives in $TAP_TMP and is thrown away)
s3_stop() {
	[ -n "${S3_DIR:-}" ] || return 0
	local n pids=() i
	for n in client.rgw osd.0 mon.a; do pids+=($(_s3_pid "$n")); done
	[ ${#pids[@]} -gt 0 ] || return 0
	kill -KILL "${pids[@]}" 2>/dev/null
	for i in $(seq 20); do # up to 2 s for them to go
		kill -0 "${pids[@]}" 2>/dev/null || break
		sleep 0.1
	done
	return 0
}

s3_curl() {
	curl -s --max-time 30 --aws-sigv4 "aws:amz:$S3_REGION:s3" --user "$S3_ACCESS_KEY:$S3_SECRET_KEY" \
		-H "x-amz-content-sha256: $_S3_EMPTY_SHA" "$@"
}

s3_bucket_create() {
	[ "$(s3_curl -o /dev/null -w '%{http_code}' -X PUT "$S3_ENDPOINT/$1")" = 200 ]
}

s3_bucket_delete() {
	[ "$(s3_curl -o /dev/null -w '%{http_code}' -X DELETE "$S3_ENDPOINT/$1")" = 204 ]
}

s3_credentials_file() {
	(
		umask 027
		printf '# S3 keys of the test user\naws_access_key_id = %s\naws_secret_access_key = %s\n' \
			"$S3_ACCESS_KEY" "$S3_SECRET_KEY" >"$1"
	)
}
