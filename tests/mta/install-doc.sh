#!/usr/bin/env bash
# install-doc.sh - the outputs doc/INSTALL.md shows are the real ones.
# Every console block of INSTALL.md marked
#   <!-- output checked by tests/mta/install-doc.sh [postfix=NAME] [setup=NAME] -->
# is run here, in document order, command by command ("# " lines), against
# the programs of the build, a private PostgreSQL (tests/lib/pg.sh) with a
# database made as step 4 says, /etc/postroom/postroom.conf written from
# step 5's text, and postconf on main.cf files made from contrib/postfix as
# steps 8, 10 and 11 say (postfix=pipe, lmtp or mailbox). Each output is
# compared with the lines the block shows: "…" stands for any text within
# a line, a line of "…" alone for any number of lines. Paths of this test
# are shown as the installed ones (/etc/postroom/postroom.conf; the
# build's sysconfdir as --sysconfdir=/etc). Blocks not marked are examples
# (systemd, journalctl, the network) and say so in INSTALL.md.
# Needs postfix (postconf, /usr/share/postfix/master.cf.dist), jq.
set -u
. "$(dirname "$0")/../lib/tap.sh"
. "$POSTROOM_SRCDIR/tests/lib/pg.sh"

DOC=$POSTROOM_SRCDIR/doc/INSTALL.md
PFC=$POSTROOM_SRCDIR/contrib/postfix
W=$TAP_TMP/install
mkdir -p "$W/etc" "$W/postfix-pipe" "$W/postfix-lmtp" "$W/postfix-mailbox"
export CONF=$W/etc/postroom.conf W

# --- step 4: the database, not migrated --------------------------------------
pg_start || { fail "PostgreSQL starts"; done_testing; }
"$PG_BINDIR/psql" -qX -d postgres -c "CREATE DATABASE postroom" >/dev/null || fail "createdb postroom"
POSTROOM_DB=postroom
# the group and login roles, as step 4's psql text creates them
roles=$(sed -n '/^su postgres -c "psql -v ON_ERROR_STOP=1" <<.EOF.$/,/^EOF$/p' "$DOC" | sed '1d;$d')
like "$roles" "CREATE ROLE postroom_authd_login LOGIN" "step 4: the roles' SQL is found"
printf '%s\n' "$roles" | "$PG_BINDIR/psql" -qX -v ON_ERROR_STOP=1 -d postroom >/dev/null ||
	fail "step 4: the roles' SQL runs"

# --- step 5: postroom.conf as INSTALL.md writes it -----------------------------
body=$(sed -n '/^cat >\/etc\/postroom\/postroom.conf <<EOF$/,/^EOF$/p' "$DOC" | sed '1d;$d')
like "$body" 'migrate_conninfo = "host=127\.0\.0\.1 dbname=postroom user=postroom"' \
	"step 5: the postroom.conf text is found"
body=${body//host=127.0.0.1 dbname=postroom/host=$PGHOST port=$PGPORT dbname=postroom}
body=${body/\$(openssl rand -base64 48)/$(openssl rand -base64 48)}
(umask 027 && printf '%s\n' "$body" >"$CONF")
chmod 0640 "$CONF"

# --- steps 8, 10, 11: main.cf from contrib/postfix ---------------------------------
# master.cf: Postfix's own services, then master.cf.postroom's (as step 8)
for d in pipe lmtp mailbox; do
	cp "$PFC/main.cf.postroom" "$W/postfix-$d/main.cf"
	grep -v '^\(smtp\|submission\|submissions\)[[:space:]]*inet' /usr/share/postfix/master.cf.dist \
		>"$W/postfix-$d/master.cf"
	cat "$PFC/master.cf.postroom" >>"$W/postfix-$d/master.cf"
done
# step 10: the lines of lmtp.main.cf replace those of main.cf.postroom
grep -v '^[[:space:]]*#' "$PFC/lmtp.main.cf" | grep . | while IFS= read -r l; do
	postconf -c "$W/postfix-lmtp" -e "$l"
done
# step 11: the hosted-domain lines removed, mydestination, mailbox_command
postconf -c "$W/postfix-mailbox" -X virtual_mailbox_domains virtual_transport \
	postroom_destination_recipient_limit virtual_mailbox_maps
postconf -c "$W/postfix-mailbox" -e "$(sed -n 's/^#\(mailbox_command = .*\)$/\1/p' "$PFC/main.cf.postroom")" \
	'mydestination = $myhostname, localhost, example.com'

# --- the commands, as INSTALL.md names them -----------------------------------
cat >"$W/prelude.sh" <<EOF
B=$POSTROOM_BUILDDIR
postroomctl() { "\$B/postroomctl" -c "$CONF" "\$@"; }
postroom-milter() { "\$B/postroom-milter" -c "$CONF" "\$@"; }
postroom-lmtpd() { "\$B/postroom-lmtpd" -c "$CONF" "\$@"; }
postroom-authd() { "\$B/postroom-authd" "\$@"; }
postconf() { command postconf -c "$W/postfix-\$PF_CONTEXT" "\$@"; }
EOF

# setup_mail: the two messages of step 13, stored as Postfix's pipe
# services of master.cf.postroom store them
setup_mail() {
	local B=$POSTROOM_BUILDDIR
	printf 'From: someone@example.net\nTo: alice@example.com\nSubject: hello alice\nMessage-Id: <hello@example.net>\n\nhi\n' |
		"$B/postroom-deliver" -c "$CONF" -f someone@example.net -C 192.0.2.7 -q 5ECA3A7D8D7 -- alice@example.com &&
		sleep 1 &&
		printf 'From: alice@example.com\nTo: bob@example.net\nSubject: numbers\nMessage-Id: <numbers@example.com>\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nsee attached\n--b\nContent-Type: text/plain\nContent-Disposition: attachment; filename=hostname\n\nmx\n--b--\n' |
		"$B/postroom-deliver" -c "$CONF" --sent -f alice@example.com -a alice@example.com -C 192.0.2.8 \
			-q 3F06BA7D8DC -- sent@postroom.invalid
}

export -f setup_mail
# --- run and compare ---------------------------------------------------------------
python3 - "$DOC" "$W" "$CONF" <<'PY' >"$W/results" 2>"$W/errors"
import re, subprocess, sys
doc, w, conf = sys.argv[1:4]
lines = open(doc).read().split("\n")
MARK = re.compile(r"^<!-- output checked by tests/mta/install-doc\.sh(.*)-->$")

def blocks():
    """(line number, options, [(command, [expected lines])]) of each marked block"""
    i = 0
    while i < len(lines):
        m = MARK.match(lines[i])
        if not m:
            i += 1
            continue
        opts = dict(o.split("=", 1) for o in m.group(1).split())
        start = i + 1
        assert lines[start] == "```console", "line %d: a marked block starts with ```console" % (start + 1)
        cmds = []
        j = start + 1
        while lines[j] != "```":
            if lines[j].startswith("# "):
                cmd = lines[j][2:]
                while cmd.endswith("\\"):
                    j += 1
                    cmd = cmd[:-1] + "\n" + lines[j]
                cmds.append((cmd, []))
            else:
                cmds[-1][1].append(lines[j])
            j += 1
        yield start + 1, opts, cmds
        i = j

def pattern(expected):
    """a regular expression for the expected lines ("…" = any text)"""
    parts = []
    for e in expected:
        if e == "…":
            parts.append(r"(?:[^\n]*\n)*?")
        else:
            parts.append(".*?".join(re.escape(x) for x in e.split("…")) + r"\n")
    return re.compile("".join(parts) + r"\Z")

key = None
for lineno, opts, cmds in blocks():
    if "setup" in opts:
        subprocess.run(["bash", "-c", "setup_%s" % opts["setup"]], check=False)
    for cmd, expected in cmds:
        run = cmd.replace("/etc/postroom/postroom.conf", conf)
        if key:
            run = re.sub(r"'pr_[^'…]*…'", "'%s'" % key, run)
        env_cmd = "PF_CONTEXT=%s; . %s/prelude.sh; %s" % (opts.get("postfix", "pipe"), w, run)
        out = subprocess.run(["bash", "-c", env_cmd], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True).stdout
        out = out.replace(conf, "/etc/postroom/postroom.conf")
        out = re.sub(r"\(default \S*/postroom/postroom\.conf\)", "(default /etc/postroom/postroom.conf)", out)
        m = re.search(r"^key: +(pr_\S+)$", out, re.M)
        if m:
            key = m.group(1)
        first = cmd.split("\n")[0]
        if pattern(expected).match(out):
            print("PASS\tINSTALL.md:%d: # %s" % (lineno, first))
        else:
            print("FAIL\tINSTALL.md:%d: # %s\tshown: %r\treal:  %r" % (lineno, first, "\n".join(expected), out))
PY
[ -s "$W/errors" ] && sed 's/^/# /' "$W/errors"
n=0
while IFS=$'\t' read -r r desc a b; do
	n=$((n + 1))
	if [ "$r" = PASS ]; then pass "$desc"; else fail "$desc" "$a" "$b"; fi
done <"$W/results"
ok '[ "$n" -ge 15 ]' "INSTALL.md: $n commands of marked blocks run (at least 15)"
done_testing
