#!/usr/bin/env bash
# Measures the sidecar: CPU while a log grows at a steady rate, and memory
# after a simulated day of traffic.
#
#   samples/sidecar-bench.sh [RATE lines/s] [SECONDS] [DAY_LINES]   (default 1000 60 1000000)
#
# Linux only (reads /proc). Everything goes to a temporary directory.
set -euo pipefail
cd "$(dirname "$0")/.."
rate=${1:-1000}
secs=${2:-60}
day=${3:-1000000}
dir=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; rm -rf "$dir"' EXIT
go build -o "$dir/relaywatch" ./cmd/relaywatch
go run ./samples/loggen/cmd/postfix-loggen -lines "$((rate * secs + day))" > "$dir/source.log"
touch "$dir/mail.log"
"$dir/relaywatch" watch --state-dir "$dir/state" --listen 127.0.0.1:0 --local-domains example.org,example.net \
  --year 2026 --timezone UTC "$dir/mail.log" 2> "$dir/stderr" &
pid=$!
sleep 1
hz=$(getconf CLK_TCK)
ticks() { awk '{print $14 + $15}' /proc/$pid/stat; }

# Steady rate: $rate lines every second.
t0=$(ticks)
python3 - "$dir/source.log" "$dir/mail.log" "$rate" "$secs" <<'PY'
import sys, time
src, dst, rate, secs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
with open(src) as f, open(dst, "a") as out:
    start = time.time()
    for s in range(secs):
        for _ in range(rate):
            out.write(f.readline())
        out.flush()
        time.sleep(max(0, start + s + 1 - time.time()))
PY
t1=$(ticks)
cpu=$(awk -v a="$t0" -v b="$t1" -v hz="$hz" -v s="$secs" 'BEGIN { printf "%.2f", 100 * (b - a) / hz / s }')
echo "steady ${rate} lines/s for ${secs}s: CPU ${cpu}% of one core, RSS $(awk '/VmRSS/ {print $2/1024 " MiB"}' /proc/$pid/status)"

# A simulated day: the rest of the generated log at once.
tail -n +"$((rate * secs + 1))" "$dir/source.log" >> "$dir/mail.log"
size=$(stat -c %s "$dir/mail.log")
addr=$(sed -n 's/.*serving \/metrics on //p' "$dir/stderr")
for _ in $(seq 600); do
  done=$(curl -s "http://$addr/metrics" | awk -v f="$dir/mail.log" -v size="$size" '$1 == "relaywatch_file_offset_bytes{file=\""f"\"}" && $2 + 0 >= size + 0 {print "yes"}')
  [ "$done" = yes ] && break
  sleep 0.5
done
echo "after a simulated day ($(wc -l < "$dir/mail.log") lines): RSS $(awk '/VmRSS/ {print $2/1024 " MiB"}' /proc/$pid/status), peak $(awk '/VmHWM/ {print $2/1024 " MiB"}' /proc/$pid/status)"
kill -TERM $pid; wait $pid || true
