#!/usr/bin/env bash
# Measures sngate's MQTT broker against mosquitto on this machine with
# `sngate bench`: the same loads against both, one after the other, then the
# memory per idle client of each. Both brokers listen on loopback only and
# are stopped at the end. Takes about three and a half minutes with the defaults.
#
# Settings (environment):
#   DURATION=10s WARMUP=2s SIZE=64   per load run
#   PUBS=10 SUBS=10                  fan-in publishers, fan-out subscribers
#   RATE=2000                        per publisher, for the fixed-rate loads
#   IDLE_CLIENTS=10000               for the idle test
#   SNGATE_PORT=21883 MOSQUITTO_PORT=21884
#   MOSQUITTO=/usr/sbin/mosquitto
#   KEEP=1                           keep the temporary directory (logs, JSON)
set -euo pipefail

DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
SIZE=${SIZE:-64}
PUBS=${PUBS:-10}
SUBS=${SUBS:-10}
RATE=${RATE:-2000}
IDLE_CLIENTS=${IDLE_CLIENTS:-10000}
PORT1=${SNGATE_PORT:-21883}
PORT2=${MOSQUITTO_PORT:-21884}
MOSQUITTO=${MOSQUITTO:-/usr/sbin/mosquitto}
DRAIN=15s # QoS 0 at full speed leaves seconds of messages in socket buffers

me=bench-vs-mosquitto
# shellcheck source=scripts/bench-lib.sh
. "$(dirname "$0")/bench-lib.sh"

root=$(cd "$(dirname "$0")/.." && pwd)
command -v go >/dev/null || die "go is not installed"
[ -x "$MOSQUITTO" ] || die "$MOSQUITTO not found (apt-get install mosquitto, or set MOSQUITTO)"

# Every bench run is bounded: warmup + duration + drain + connecting.
RUN_TIMEOUT=$(( $(secs "$WARMUP") + $(secs "$DURATION") + $(secs "$DRAIN") + 30 ))

for p in "$PORT1" "$PORT2"; do
	tcp_busy "$p" && die "port $p is in use (set SNGATE_PORT / MOSQUITTO_PORT)"
done

# Both brokers inherit this limit; the idle test needs a descriptor per client.
need_fds $((IDLE_CLIENTS + 100))

tmp=$(mktemp -d)
SNGATE_PID=""
MOSQ_PID=""
stop_brokers() {
	stop_pid "$SNGATE_PID" sngate
	stop_pid "$MOSQ_PID" mosquitto
	SNGATE_PID="" MOSQ_PID=""
}
cleanup() {
	stop_brokers
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

cat >"$tmp/sngate.yaml" <<EOF
log:
  level: warn
data_dir: $tmp/sngate-data
broker:
  listeners:
    - type: tcp
      address: 127.0.0.1:$PORT1
  sys_interval: -1s
  max_clients: $((IDLE_CLIENTS + 1000))
  max_inflight: 20            # as mosquitto's max_inflight_messages
  max_queued_messages: 1000
EOF

cat >"$tmp/mosquitto.conf" <<EOF
listener $PORT2 127.0.0.1
allow_anonymous true
persistence false
max_queued_messages 1000
max_inflight_messages 20
log_dest file $tmp/mosquitto.log
# Do not switch to the mosquitto user when started as root: it could not
# write the log in this directory.
user $(id -un)
EOF

wait_port() { # port pid name
	local i
	for i in $(seq 100); do
		kill -0 "$2" 2>/dev/null || die "$3 exited at start; see $tmp/$3.log (KEEP=1 keeps it)"
		tcp_busy "$1" && return 0
		sleep 0.1
	done
	die "$3 is not listening on port $1 after 10 s"
}
start_brokers() {
	"$SNGATE" run -c "$tmp/sngate.yaml" >>"$tmp/sngate.log" 2>&1 &
	SNGATE_PID=$!
	"$MOSQUITTO" -c "$tmp/mosquitto.conf" >>"$tmp/mosquitto.out" 2>&1 &
	MOSQ_PID=$!
	wait_port "$PORT1" "$SNGATE_PID" sngate
	wait_port "$PORT2" "$MOSQ_PID" mosquitto
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b == 0) print "-"; else printf "%.2f", a / b }'; }

echo "machine: $(nproc) CPUs, $(uname -sr); $(go version | cut -d' ' -f3); mosquitto $("$MOSQUITTO" -h 2>/dev/null | sed -n 's/^mosquitto version //p')"
start_brokers

# Each load: a label and the bench mqtt flags.
loads=(
	"fan-in  QoS0 ${PUBS}->1 max|--mode fan-in --publishers $PUBS --subscribers 1 --qos 0"
	"fan-in  QoS1 ${PUBS}->1 max|--mode fan-in --publishers $PUBS --subscribers 1 --qos 1"
	"fan-out QoS0 1->${SUBS} max|--mode fan-out --publishers 1 --subscribers $SUBS --qos 0"
	"fan-out QoS1 1->${SUBS} max|--mode fan-out --publishers 1 --subscribers $SUBS --qos 1"
	"fan-in  QoS0 ${PUBS}x${RATE}/s|--mode fan-in --publishers $PUBS --subscribers 1 --qos 0 --rate $RATE"
	"fan-out QoS1 1->${SUBS} ${RATE}/s|--mode fan-out --publishers 1 --subscribers $SUBS --qos 1 --rate $RATE"
)
echo "loads: $SIZE-byte payloads, warmup $WARMUP, measured $DURATION each; sngate and mosquitto in turn"
n=0
for load in "${loads[@]}"; do
	n=$((n + 1))
	args=${load#*|}
	for b in sngate mosquitto; do
		port=$PORT1
		[ "$b" = mosquitto ] && port=$PORT2
		out="$tmp/load$n-$b.json"
		# shellcheck disable=SC2086 # args are words
		if ! timeout "$RUN_TIMEOUT" "$SNGATE" bench mqtt --addr "127.0.0.1:$port" $args \
			--size "$SIZE" --duration "$DURATION" --warmup "$WARMUP" --drain "$DRAIN" --json \
			>"$out" 2>"$tmp/load$n-$b.err"; then
			echo "  ${load%%|*} on $b: $(tail -n 1 "$tmp/load$n-$b.err")" >&2
		fi
		echo "  done: ${load%%|*} on $b"
	done
done

echo
echo "Throughput (msgs/s received), end-to-end latency (ms) and loss; ratio = sngate / mosquitto"
fmt="%-26s | %10s %8s %8s %8s | %10s %8s %8s %8s | %7s %6s %6s\n"
# shellcheck disable=SC2059
printf "$fmt" "load" "sngate" "p50" "p99" "loss" "mosquitto" "p50" "p99" "loss" "msgs/s" "p50" "p99"
printf '%s\n' "$(printf '%.0s-' $(seq 124))"
n=0
for load in "${loads[@]}"; do
	n=$((n + 1))
	s="$tmp/load$n-sngate.json" m="$tmp/load$n-mosquitto.json"
	srate=$(field "$s" msgs_per_sec) mrate=$(field "$m" msgs_per_sec)
	sp50=$(field "$s" p50_us) mp50=$(field "$m" p50_us)
	sp99=$(field "$s" p99_us) mp99=$(field "$m" p99_us)
	# shellcheck disable=SC2059
	printf "$fmt" "${load%%|*}" \
		"$(printf '%.0f' "${srate:-0}")" "$(ms "$sp50")" "$(ms "$sp99")" "$(field "$s" loss)" \
		"$(printf '%.0f' "${mrate:-0}")" "$(ms "$mp50")" "$(ms "$mp99")" "$(field "$m" loss)" \
		"$(ratio "$srate" "$mrate")" "$(ratio "$sp50" "$mp50")" "$(ratio "$sp99" "$mp99")"
done
echo "(\"max\" loads publish as fast as possible: their latency is mostly time spent queued in socket buffers)"

# Idle clients, each broker freshly started so that memory left over from
# the loads does not hide what the clients cost.
echo
echo "restarting both brokers for the idle test..."
stop_brokers
start_brokers
sleep 1
for b in sngate mosquitto; do
	port=$PORT1 pid=$SNGATE_PID
	[ "$b" = mosquitto ] && port=$PORT2 pid=$MOSQ_PID
	if ! timeout 120 "$SNGATE" bench idle --clients "$IDLE_CLIENTS" --addr "127.0.0.1:$port" --pid "$pid" --json \
		>"$tmp/idle-$b.json" 2>"$tmp/idle-$b.err"; then
		echo "  idle on $b: $(tail -n 1 "$tmp/idle-$b.err")" >&2
	fi
done
echo
echo "Idle clients: $IDLE_CLIENTS connected (keep-alive 300 s), broker RSS"
ifmt="%-10s %12s %12s %16s\n"
# shellcheck disable=SC2059
printf "$ifmt" broker "before MiB" "after MiB" "per client KiB"
for b in sngate mosquitto; do
	f="$tmp/idle-$b.json"
	# shellcheck disable=SC2059
	printf "$ifmt" "$b" \
		"$(awk -v v="$(field "$f" rss_before_bytes)" 'BEGIN { printf "%.1f", v / 1048576 }')" \
		"$(awk -v v="$(field "$f" rss_after_bytes)" 'BEGIN { printf "%.1f", v / 1048576 }')" \
		"$(awk -v v="$(field "$f" rss_per_client_bytes)" 'BEGIN { printf "%.2f", v / 1024 }')"
done
echo "ratio per client (sngate / mosquitto): $(ratio "$(field "$tmp/idle-sngate.json" rss_per_client_bytes)" "$(field "$tmp/idle-mosquitto.json" rss_per_client_bytes)")"
stop_brokers
