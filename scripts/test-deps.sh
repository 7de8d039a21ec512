#!/usr/bin/env bash
# Installs the programs the integration tests drive (mosquitto, its clients,
# socat, qemu-user-static for the arm64 binary, chromium for the status
# page, debootstrap for the .deb install test) if any is missing and we can:
# as root with apt-get. Otherwise it only warns; the tests that need a
# missing program skip themselves (outside CI). With --strict (.ci/run) a
# program it cannot install is an error, since CI fails those tests.
set -euo pipefail

strict=0
[ "${1:-}" = --strict ] && strict=1

# fail prints a warning, and exits 1 with --strict.
fail() {
	echo "test-deps: $1" >&2
	exit "$strict"
}

# Debian package -> a program it provides.
declare -A provides=(
	[mosquitto]=mosquitto
	[mosquitto-clients]=mosquitto_pub
	[socat]=socat
	[qemu-user-static]=qemu-aarch64-static
	[chromium]=chromium
	[debootstrap]=debootstrap
)

have() {
	command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/usr/local/sbin/$1" ]
}

missing=()
for pkg in "${!provides[@]}"; do
	have "${provides[$pkg]}" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$EUID" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
	echo "test-deps: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	if apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null; then
		exit 0
	fi
	fail "warning: could not install ${missing[*]}; tests that need them will be skipped"
fi

fail "warning: missing ${missing[*]} (install them with: sudo apt-get install ${missing[*]}); tests that need them will be skipped"
