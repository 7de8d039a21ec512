# Shared by the bench-*.sh scripts, which source it. They set `me`, the
# prefix of their messages, first.

die() { echo "$me: $*" >&2; exit 1; }

secs() { # 10s -> 10, 1m -> 60, 500ms -> 1 (rounded up; for timeouts only)
	case $1 in
	*ms) echo $(( (${1%ms} + 999) / 1000 )) ;;
	*s) echo "${1%s}" | awk '{print int($1 + 0.999)}' ;;
	*m) echo $(( ${1%m} * 60 )) ;;
	*) die "cannot read duration $1 (use s, ms or m)" ;;
	esac
}

tcp_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# need_fds N: raise the open file limit to the hard one, and die if it is
# still below N (the servers and the load generator inherit it).
need_fds() {
	ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
	if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$1" ]; then
		die "open file limit $(ulimit -n) is too low for $IDLE_CLIENTS idle clients (raise ulimit -n or set IDLE_CLIENTS)"
	fi
}

stop_pid() { # pid name: SIGTERM, then SIGKILL after 10 s
	local pid=$1 i
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null || return 0
	for i in $(seq 100); do
		kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
		sleep 0.1
	done
	echo "$me: $2 did not stop in 10 s: killing it" >&2
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

# field FILE KEY: a number from the flat JSON object sngate bench prints.
field() { sed -n "s/.*\"$2\":\([-0-9.e+]*\).*/\1/p" "$1"; }
ms() { awk -v us="$1" 'BEGIN { if (us == "") print "-"; else printf "%.2f", us / 1000 }'; }
