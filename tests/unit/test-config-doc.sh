#!/usr/bin/env bash
# test-config-doc.sh - every parameter declared in lib/conf_params.c (the
# shared sections) or in a program's PROGRAM_params.c — all of which
# postroomctl registers and lists — is documented in doc/postroom.conf.5 and
# in the sample configuration, and nothing else is.
. "$(dirname "$0")/../lib/tap.sh"

: >"$TAP_TMP/empty.conf"
params=$("$POSTROOM_BUILDDIR/postroomctl" -c "$TAP_TMP/empty.conf" config params | cut -f1)
ok '[ -n "$params" ]' "postroomctl config params lists the table"
for p in $params; do
	section=${p%%.*}
	name=${p#*.}
	# the man page documents each as .TP / .B section.name
	if grep -q "^\.B $section\\.$name\$" "$POSTROOM_SRCDIR/doc/postroom.conf.5"; then
		pass "$p documented in postroom.conf(5)"
	else
		fail "$p documented in postroom.conf(5)" "add a '.TP' / '.B $p' entry"
	fi
	if grep -q "^[[:space:]]*#*[[:space:]]*$name[[:space:]]*=" "$POSTROOM_SRCDIR/doc/postroom.conf.sample"; then
		pass "$p present in postroom.conf.sample"
	else
		fail "$p present in postroom.conf.sample"
	fi
done
# and nothing documented that is not declared
for d in $(sed -n 's/^\.B \([a-z_]*\.[a-z_.]*\)$/\1/p' "$POSTROOM_SRCDIR/doc/postroom.conf.5"); do
	if printf '%s\n' $params | grep -qx "$d"; then pass "documented $d is declared"
	else fail "documented $d is declared" "remove it from the man page or declare it"; fi
done
done_testing
