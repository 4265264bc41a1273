# netns.sh - run a test file again inside a network and mount namespace
# of its own (unshare -nm), so that it can bind the well-known ports (25,
# 53) and rewrite /etc/resolv.conf without touching the machine. Source
# after tap.sh, at the very top of the file, before anything is started:
#
#	if [ -z "${POSTROOM_TEST_NS:-}" ]; then
#		. "$(dirname "$0")/../lib/tap.sh"
#		. "$(dirname "$0")/../lib/netns.sh"
#		netns_reexec "Postfix" "dnsmasq opendkim" "$0" "$@"
#	fi
#	. "$(dirname "$0")/../lib/tap.sh"   # again, inside the namespace
#	...
#	ip link set lo up
#
# netns_reexec WHAT TOOLS SCRIPT ARGS...
#	skips without root; fails (never skips) when one of TOOLS is missing
#	or a namespace cannot be made here (a container without
#	CAP_SYS_ADMIN: unshare's own error is shown); else replaces this
#	process by SCRIPT ARGS... in a new namespace, with POSTROOM_TEST_NS=1
#	(this process's $TAP_TMP is removed: the new one makes its own).

netns_reexec() {
	local what=$1 tools=$2 script=$3 p err
	shift 3
	[ "$(id -u)" -eq 0 ] || { pass "# SKIP needs root (network namespace, $what)"; done_testing; }
	for p in unshare $tools; do
		command -v "$p" >/dev/null || { fail "$p installed (tools/install-deps)"; done_testing; }
	done
	err=$(unshare -nm --propagation private true 2>&1) ||
		{ fail "unshare -nm works here" "$err"; done_testing; }
	export POSTROOM_TEST_NS=1
	trap - EXIT
	rm -rf "$TAP_TMP"
	exec unshare -nm --propagation private bash "$script" "$@"
}
