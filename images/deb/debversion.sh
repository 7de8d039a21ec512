#!/bin/sh
# debversion.sh: turn a `git describe --tags --always --dirty` string (the
# Makefile's VERSION) into a Debian package version, printed on stdout.
#
#   v1.2.3                  -> 1.2.3
#   v1.2.3-rc1              -> 1.2.3~rc1          (sorts before 1.2.3)
#   v1.2.3-4-gabc1234       -> 1.2.3+git20260101.4.abc1234   (after 1.2.3)
#   abc1234 (no tag)        -> 0.0.0~git20260101.abc1234
#   any of these + -dirty   -> the same with .dirty (+dirty after a bare tag)
#   1.2.3 (VERSION=1.2.3)   -> 1.2.3
#
# The date is the commit date of HEAD (UTC), so the same commit always gives
# the same version; outside a git tree, or with DEB_DATE set, DEB_DATE or
# today is used. Exits 1, saying why, if the result is not a valid Debian
# version.
set -eu

if [ $# -ne 1 ] || [ -z "$1" ]; then
	echo "usage: debversion.sh GIT-DESCRIBE-STRING" >&2
	exit 2
fi
v=$1

date=${DEB_DATE:-$(TZ=UTC git log -1 --format=%cd --date=format-local:%Y%m%d 2>/dev/null || true)}
[ -n "$date" ] || date=$(date -u +%Y%m%d)

dirty=
case $v in
*-dirty)
	dirty=1
	v=${v%-dirty}
	;;
esac

case $v in
v[0-9]*.* | [0-9]*.*)
	# A release tag, perhaps followed by -N-gHASH (commits since it).
	v=${v#v}
	since=
	if printf '%s\n' "$v" | grep -Eq -- '-[0-9]+-g[0-9a-f]+$'; then
		hash=${v##*-g}
		v=${v%-g*}
		n=${v##*-}
		v=${v%-*}
		since=git$date.$n.$hash
	fi
	# A pre-release (v1.2.3-rc1) sorts before its release.
	v=$(printf '%s\n' "$v" | tr '-' '~')
	if [ -n "$since" ]; then
		v=$v+$since
		[ -z "$dirty" ] || v=$v.dirty
	elif [ -n "$dirty" ]; then
		v=$v+dirty
	fi
	;;
*)
	# No tag: a bare commit hash (or "dev" outside git).
	v=0.0.0~git$date.$(printf '%s\n' "$v" | tr -c 'A-Za-z0-9.+~\n' '.')
	[ -z "$dirty" ] || v=$v.dirty
	;;
esac

# Debian policy 5.6.12: an upstream version starts with a digit and holds
# only alphanumerics and . + ~ (no hyphen: there is no Debian revision).
if ! printf '%s\n' "$v" | grep -Eq '^[0-9][A-Za-z0-9.+~]*$'; then
	echo "debversion.sh: cannot make a Debian version of \"$1\" (got \"$v\")" >&2
	exit 1
fi
printf '%s\n' "$v"
