#!/bin/sh
# Installs the Debian packages listed in scripts/debian-packages.txt that are
# missing.  Needs root (or sudo) only when something is missing.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
list=${1:-$here/debian-packages.txt}

missing=""
for p in $(grep -v '^#' "$list"); do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0

echo "installing:$missing" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo=sudo
$sudo apt-get update -q
# Some packages are services (apache2 and haproxy, which the tests run on
# their own ports): installing them must not start them.  A policy-rc.d that
# denies every start is in place for the install only, unless there is one.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
	trap '$sudo rm -f "$policy"' EXIT
	printf '#!/bin/sh\n# scripts/deps.sh: no service starts while it installs.\nexit 101\n' |
		$sudo tee "$policy" >/dev/null
	$sudo chmod 755 "$policy"
fi
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends $missing
case " $missing " in
*" apache2 "*)
	# Nor at the next boot.
	if command -v systemctl >/dev/null 2>&1; then
		$sudo systemctl disable --now apache2 apache-htcacheclean >/dev/null 2>&1 || true
	fi
	;;
esac
case " $missing " in
*" haproxy "*)
	if command -v systemctl >/dev/null 2>&1; then
		$sudo systemctl disable --now haproxy >/dev/null 2>&1 || true
	fi
	;;
esac
