#!/bin/bash
# harness-http.sh - smoke test of tests/lib/httprec.py and http.sh: the
# recorder logs method, path, headers and body of a POST; --status 500
# replies 500; --hang makes a client time out. Needs python3, curl.
set -u
. "$(dirname "$0")/../lib/tap.sh"
. "$POSTROOM_SRCDIR/tests/lib/http.sh"

# jget FILE N EXPR: python expression EXPR over request N (1-based) as r
jget() {
	python3 -c 'import json,sys; r=json.loads(open(sys.argv[1]).read().splitlines()[int(sys.argv[2])-1]); print(eval(sys.argv[3]))' "$@"
}

if http_rec_start; then pass "http_rec_start on $HTTP_REC_URL"; else fail "http_rec_start"; done_testing; fi
is "$(http_rec_count)" 0 "no request yet"
code=$(curl -s -o "$TAP_TMP/body" -w '%{http_code}' --max-time 5 \
	-H 'Content-Type: application/json' -H 'X-Postroom-Event: delivered' \
	--data '{"rcpt":"someone@postroom.test","n":1}' "$HTTP_REC_URL/hook/mail?x=1")
is "$code" 200 "POST answered 200"
is "$(http_rec_count)" 1 "one request recorded"
is "$(jget "$HTTP_REC_OUT" 1 'r["method"]')" POST "method recorded"
is "$(jget "$HTTP_REC_OUT" 1 'r["path"]')" "/hook/mail?x=1" "path recorded"
is "$(jget "$HTTP_REC_OUT" 1 'r["headers"]["X-Postroom-Event"]')" delivered "header recorded"
is "$(jget "$HTTP_REC_OUT" 1 'r["headers"]["Content-Type"]')" application/json "content type recorded"
is "$(jget "$HTTP_REC_OUT" 1 'json.loads(r["body"])["rcpt"]')" someone@postroom.test "JSON body recorded"
curl -s -o /dev/null --max-time 5 "$HTTP_REC_URL/second"
is "$(http_rec_count)" 2 "second request recorded"
is "$(jget "$HTTP_REC_OUT" 2 'r["method"] + " " + r["path"]')" "GET /second" "GET recorded"
first_pid=$HTTP_REC_PID

http_rec_start --status 500 || fail "http_rec_start --status 500"
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 --data x "$HTTP_REC_URL/")
is "$code" 500 "--status 500 answers 500"
is "$(http_rec_count)" 1 "the 500 request is recorded too"

http_rec_start --hang || fail "http_rec_start --hang"
start=$(date +%s)
curl -s -o /dev/null --max-time 2 --data x "$HTTP_REC_URL/slow"
rc=$?
is "$rc" 28 "--hang: curl --max-time 2 times out (exit 28)"
ok '[ $(( $(date +%s) - start )) -lt 5 ]' "timed out promptly"
ok 'http_rec_wait 1' "the hanging request is recorded"

hang_pid=$HTTP_REC_PID
http_rec_stop "$first_pid"
http_rec_stop
ok '! kill -0 "$first_pid" 2>/dev/null && ! kill -0 "$hang_pid" 2>/dev/null' "recorders stopped"

done_testing
