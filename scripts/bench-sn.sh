#!/usr/bin/env bash
# Measures sngate's MQTT-SN gateway with `sngate bench sn` and `sngate bench
# sn-idle`: upstream throughput (MQTT-SN sensors publishing, QoS 0 and 1),
# downstream fan-out (one MQTT publisher, many MQTT-SN subscribers, QoS 0
# and 1) and the gateway's memory per idle MQTT-SN client. sngate listens on
# loopback only (TCP for the broker, UDP for the gateway) and is stopped at
# the end. Takes about two minutes with the defaults.
#
# Settings (environment):
#   DURATION=10s WARMUP=2s SIZE=64   per load run
#   UP_CLIENTS=100                   upstream sensors
#   DOWN_CLIENTS=1000                downstream subscribers
#   UP_RATE=0 DOWN_RATE=0            per sensor / of the publisher; 0 = max
#   DOWN_WINDOW=16                   publisher messages not yet delivered to all
#   IDLE_CLIENTS=10000               for the idle test
#   TCP_PORT=22883 UDP_PORT=22884
#   KEEP=1                           keep the temporary directory (logs, JSON)
set -euo pipefail

DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
SIZE=${SIZE:-64}
UP_CLIENTS=${UP_CLIENTS:-100}
DOWN_CLIENTS=${DOWN_CLIENTS:-1000}
UP_RATE=${UP_RATE:-0}
DOWN_RATE=${DOWN_RATE:-0}
DOWN_WINDOW=${DOWN_WINDOW:-16}
IDLE_CLIENTS=${IDLE_CLIENTS:-10000}
TCP_PORT=${TCP_PORT:-22883}
UDP_PORT=${UDP_PORT:-22884}
DRAIN=10s

me=bench-sn
# shellcheck source=scripts/bench-lib.sh
. "$(dirname "$0")/bench-lib.sh"

root=$(cd "$(dirname "$0")/.." && pwd)
command -v go >/dev/null || die "go is not installed"

# Every bench run is bounded: warmup + duration + drain + connecting.
RUN_TIMEOUT=$(( $(secs "$WARMUP") + $(secs "$DURATION") + $(secs "$DRAIN") + 60 ))

udp_busy() { # a bound UDP port shows in /proc/net/udp (local address column)
	grep -qi ":$(printf '%04X' "$1") " /proc/net/udp /proc/net/udp6 2>/dev/null
}
tcp_busy "$TCP_PORT" && die "TCP port $TCP_PORT is in use (set TCP_PORT)"
udp_busy "$UDP_PORT" && die "UDP port $UDP_PORT is in use (set UDP_PORT)"

# sngate and the load generator need a descriptor per client.
need_fds $((IDLE_CLIENTS + 200))

tmp=$(mktemp -d)
PID=""
stop_sngate() {
	stop_pid "$PID" sngate
	PID=""
}
cleanup() {
	stop_sngate
	if [ -n "${KEEP:-}" ]; then
		echo "kept $tmp" >&2
	else
		rm -rf "$tmp"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "building sngate..."
(cd "$root" && go build -trimpath -o "$tmp/sngate" ./cmd/sngate)
SNGATE="$tmp/sngate"

clients=$((IDLE_CLIENTS + DOWN_CLIENTS + UP_CLIENTS + 100))
cat >"$tmp/sngate.yaml" <<EOF
log:
  level: warn
data_dir: $tmp/data
broker:
  listeners:
    - type: tcp
      address: 127.0.0.1:$TCP_PORT
  sys_interval: -1s
  max_clients: $clients
gateway:
  listen: 127.0.0.1:$UDP_PORT
  max_clients: $clients
  packets_per_second: 0       # every benchmark client sends far more than a sensor
EOF

start_sngate() {
	local i
	"$SNGATE" run -c "$tmp/sngate.yaml" >>"$tmp/sngate.log" 2>&1 &
	PID=$!
	for i in $(seq 100); do
		kill -0 "$PID" 2>/dev/null || die "sngate exited at start; see $tmp/sngate.log (KEEP=1 keeps it)"
		tcp_busy "$TCP_PORT" && udp_busy "$UDP_PORT" && return 0
		sleep 0.1
	done
	die "sngate is not listening on TCP $TCP_PORT and UDP $UDP_PORT after 10 s"
}

echo "machine: $(nproc) CPUs, $(uname -sr); $(go version | cut -d' ' -f3)"
start_sngate

loads=(
	"up   QoS0 ${UP_CLIENTS} sensors|--direction up --clients $UP_CLIENTS --qos 0 --rate $UP_RATE"
	"up   QoS1 ${UP_CLIENTS} sensors|--direction up --clients $UP_CLIENTS --qos 1 --rate $UP_RATE"
	"down QoS0 1->${DOWN_CLIENTS}|--direction down --clients $DOWN_CLIENTS --qos 0 --rate $DOWN_RATE --window $DOWN_WINDOW"
	"down QoS1 1->${DOWN_CLIENTS}|--direction down --clients $DOWN_CLIENTS --qos 1 --rate $DOWN_RATE --window $DOWN_WINDOW"
)
echo "loads: $SIZE-byte payloads, warmup $WARMUP, measured $DURATION each"
n=0
for load in "${loads[@]}"; do
	n=$((n + 1))
	args=${load#*|}
	out="$tmp/load$n.json"
	# shellcheck disable=SC2086 # args are words
	if ! timeout "$RUN_TIMEOUT" "$SNGATE" bench sn --gateway "127.0.0.1:$UDP_PORT" --broker "127.0.0.1:$TCP_PORT" $args \
		--size "$SIZE" --duration "$DURATION" --warmup "$WARMUP" --drain "$DRAIN" --json \
		>"$out" 2>"$tmp/load$n.err"; then
		echo "  ${load%%|*}: $(tail -n 1 "$tmp/load$n.err")" >&2
	fi
	echo "  done: ${load%%|*}"
done

echo
echo "Throughput (msgs/s received), end-to-end latency (ms) and loss"
fmt="%-24s | %10s %8s %8s %8s | %9s %9s %7s %7s\n"
# shellcheck disable=SC2059
printf "$fmt" "load" "msgs/s" "p50" "p99" "max" "sent" "loss" "retrans" "redeliv"
printf '%s\n' "$(printf '%.0s-' $(seq 100))"
n=0
for load in "${loads[@]}"; do
	n=$((n + 1))
	f="$tmp/load$n.json"
	rate=$(field "$f" msgs_per_sec)
	# shellcheck disable=SC2059
	printf "$fmt" "${load%%|*}" "$(printf '%.0f' "${rate:-0}")" "$(ms "$(field "$f" p50_us)")" \
		"$(ms "$(field "$f" p99_us)")" "$(ms "$(field "$f" max_us)")" "$(field "$f" sent)" \
		"$(field "$f" loss)" "$(field "$f" retransmits)" "$(field "$f" redelivered)"
done
echo "(down: msgs/s counts deliveries, publisher messages × clients)"

# Idle clients on a freshly started sngate, so that memory left over from
# the loads does not hide what the clients cost.
echo
echo "restarting sngate for the idle test..."
stop_sngate
start_sngate
sleep 1
if ! timeout 180 "$SNGATE" bench sn-idle --clients "$IDLE_CLIENTS" --gateway "127.0.0.1:$UDP_PORT" --pid "$PID" --json \
	>"$tmp/idle.json" 2>"$tmp/idle.err"; then
	echo "  idle: $(tail -n 1 "$tmp/idle.err")" >&2
fi
f="$tmp/idle.json"
echo "Idle MQTT-SN clients: $(field "$f" opened) of $IDLE_CLIENTS connected in $(field "$f" connect_s) s (keep-alive 65535 s), sngate RSS"
awk -v b="$(field "$f" rss_before_bytes)" -v a="$(field "$f" rss_after_bytes)" -v p="$(field "$f" rss_per_client_bytes)" \
	'BEGIN { printf "  before %.1f MiB, after %.1f MiB, per client %.2f KiB (target < 4 KiB)\n", b / 1048576, a / 1048576, p / 1024 }'
stop_sngate
