#!/bin/bash
# Builds the Debian package from a copy of the source tree, checks it with
# lintian, installs it with dpkg -i, checks the installed files and the
# service's pieces without needing a running systemd, and purges it again.
#
# Usage (root, on Debian 12): scripts/package-test.sh
#
# The source tree is not touched: the tracked and untracked-but-not-ignored
# files are copied to a temporary directory, where dpkg-buildpackage runs and
# leaves its .deb files; that directory is removed at the end, and a package
# this script installed is purged even when a check fails.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
if [ "$(id -u)" -ne 0 ]; then
	echo "package-test: needs root (dpkg -i, a system user)" >&2
	exit 2
fi
if dpkg-query -W -f='${Status}' portico 2>/dev/null | grep -q installed; then
	echo "package-test: a portico package is already installed; purge it first" >&2
	exit 2
fi
"$top/scripts/deps.sh"

work=$(mktemp -d /tmp/portico-package.XXXXXX)
installed=no
server=
passed=0
failed=0
started=$SECONDS

cleanup() {
	[ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
	[ "$installed" = yes ] && dpkg --purge portico >/dev/null 2>&1
	rm -rf "$work"
}
trap cleanup EXIT

check() { # description, command...
	local what=$1
	shift
	if "$@"; then
		echo "ok   $what"
		passed=$((passed + 1))
	else
		echo "FAIL $what"
		failed=$((failed + 1))
	fi
}

step() {
	echo "== $* ($((SECONDS - started)) s)"
}

# A copy of the source tree without build directories or anything ignored.
copy_tree() {
	mkdir "$work/portico"
	if git -C "$top" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
		git -C "$top" ls-files -z --cached --others --exclude-standard |
			tar -C "$top" --null --ignore-failed-read -T - -cf - 2>/dev/null |
			tar -C "$work/portico" -xf -
	else
		tar -C "$top" --exclude='./build*' --exclude='./obj-*' -cf - . |
			tar -C "$work/portico" -xf -
	fi
}

step "building the package"
copy_tree
if ! (cd "$work/portico" && dpkg-buildpackage -us -uc -b) >"$work/build.log" 2>&1; then
	tail -n 60 "$work/build.log"
	echo "package-test: dpkg-buildpackage failed" >&2
	exit 1
fi
grep -E '^(100% tests passed|[0-9]+% tests passed|Total Test time)' "$work/build.log" || true
deb=$(ls "$work"/portico_*.deb)
changes=$(ls "$work"/portico_*.changes)
echo "package: $(basename "$deb")"
dpkg -c "$deb" | awk '{ print $1, $2, $6, $7, $8 }'

step "lintian"
# lintian prints one line per tag; errors fail the run, warnings are listed.
lintian --fail-on error --display-info "$changes" 2>&1 | tee "$work/lintian.log" &&
	lint=0 || lint=$?
check "lintian reports no errors" test "$lint" -eq 0
echo "lintian: $(grep -c '^E: ' "$work/lintian.log" || true) errors," \
	"$(grep -c '^W: ' "$work/lintian.log" || true) warnings," \
	"$(grep -c '^I: ' "$work/lintian.log" || true) info"

step "installing with dpkg -i"
dpkg -i "$deb"
installed=yes
check "the portico system user exists" \
	sh -c '[ "$(getent passwd portico | cut -d: -f3)" -lt 1000 ]'
check "/etc/portico/portico.yaml is a conffile" \
	sh -c "dpkg-query -W -f='\${Conffiles}' portico | grep -q ' /etc/portico/portico.yaml '"
check "/etc/logrotate.d/portico is a conffile" \
	sh -c "dpkg-query -W -f='\${Conffiles}' portico | grep -q ' /etc/logrotate.d/portico '"
check "the unit is enabled" test -L /etc/systemd/system/multi-user.target.wants/portico.service
check "portico -t on the installed configuration" /usr/sbin/portico -t -c /etc/portico/portico.yaml
check "portico -t as the portico user" \
	setpriv --reuid=portico --regid=portico --init-groups \
	/usr/sbin/portico -t -c /etc/portico/portico.yaml
check "systemd-analyze verify on the installed unit" \
	systemd-analyze verify /lib/systemd/system/portico.service
check "the unit reloads with SIGHUP" \
	grep -qx 'ExecReload=/bin/kill -HUP $MAINPID' /lib/systemd/system/portico.service
check "the man pages are installed" \
	test -f /usr/share/man/man8/portico.8.gz -a -f /usr/share/man/man5/portico.yaml.5.gz

step "running the installed binary as the portico user"
# What systemd does for LogsDirectory=portico, LogsDirectoryMode=0750.
install -d -o portico -g portico -m 0750 /var/log/portico
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$work/run.yaml" <<EOF
listen:
  - 127.0.0.1:$port
log:
  access: /var/log/portico/access.log
  error: /var/log/portico/error.log
routes:
  - path: /
    pass: off
EOF
chmod 0644 "$work/run.yaml"
chmod 0755 "$work"
# setpriv execs portico itself, so $! is the main pid that systemd would see.
setpriv --reuid=portico --regid=portico --init-groups /usr/sbin/portico -c "$work/run.yaml" &
server=$!
for _ in $(seq 50); do
	curl -s -o /dev/null "http://127.0.0.1:$port/" && break
	sleep 0.1
done
check "a request is logged to /var/log/portico/access.log" \
	sh -c "curl -s -o /dev/null http://127.0.0.1:$port/x; sleep 0.5; grep -q 'GET /x ' /var/log/portico/access.log"
# The unit's ExecReload, with the main pid systemd would substitute.
MAINPID=$server sh -c "$(sed -n 's/^ExecReload=//p' /lib/systemd/system/portico.service)"
sleep 0.5
check "ExecReload reloads the configuration" grep -q 'configuration reloaded' /var/log/portico/error.log
# The installed logrotate file, forced: the rotation runs as the portico
# user; its postrotate finds no systemd here, so the SIGUSR1 it would send to
# the main pid is sent by hand.
check "logrotate rotates /var/log/portico/*.log" \
	sh -c "logrotate -f -s '$work/logrotate.state' /etc/logrotate.d/portico &&
		test -f /var/log/portico/access.log.1 -a -f /var/log/portico/error.log.1"
kill -USR1 "$server"
sleep 0.3
curl -s -o /dev/null "http://127.0.0.1:$port/y"
sleep 0.5
check "SIGUSR1 reopens the access log" grep -q 'GET /y ' /var/log/portico/access.log
kill "$server"
wait "$server" || true
server=
check "the log files belong to the portico user" \
	sh -c '[ "$(stat -c %U /var/log/portico/access.log /var/log/portico/error.log)" = "$(printf "portico\nportico")" ]'

step "purging"
dpkg --purge portico
installed=no
check "purge removes /var/log/portico" test ! -e /var/log/portico
check "purge removes /etc/portico" test ! -e /etc/portico
check "purge removes the binary and the unit" \
	test ! -e /usr/sbin/portico -a ! -e /lib/systemd/system/portico.service
check "purge removes the enablement symlink" \
	test ! -e /etc/systemd/system/multi-user.target.wants/portico.service

step "done"
echo "package-test: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
