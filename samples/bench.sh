#!/usr/bin/env bash
# Times `relaywatch analyze` against pflogsumm (Postfix) or eximstats (Exim)
# on the same generated log: page-cached, alternating runs, best of N.
# Prints lines/s of each, the ratio, peak RSS, and the raw read speed (cat)
# for reference.
#
#   samples/bench.sh [LINES] [RUNS] [postfix|exim]   (default 1000000 lines, 5 runs, postfix)
#   samples/bench.sh FILE [RUNS] [postfix|exim]      (an existing log instead of a generated one)
#
# Needs GNU time (/usr/bin/time) and pflogsumm (apt-get install pflogsumm) or
# eximstats (on PATH, or named by RELAYWATCH_EXIMSTATS; .ci/run shows how to
# unpack it from exim4-base). Generated logs go to ${TMPDIR:-/tmp} and are
# never committed.
set -euo pipefail
cd "$(dirname "$0")/.."
lines=${1:-1000000}
runs=${2:-5}
format=${3:-postfix}
dir=${TMPDIR:-/tmp}/relaywatch-bench
mkdir -p "$dir"
bin="$dir/relaywatch"
go build -o "$bin" ./cmd/relaywatch

if [ -f "$lines" ]; then
  log=$lines
else
  log="$dir/$format-$lines.log"
  if [ ! -s "$log" ]; then
    echo "generating $log ..." >&2
    flag=""; [ "$format" = exim ] && flag=-exim
    go run ./samples/loggen/cmd/postfix-loggen $flag -lines "$lines" > "$log"
  fi
fi
case "$format" in
  postfix) oracle=(pflogsumm); oname=pflogsumm ;;
  exim) oracle=(perl "${RELAYWATCH_EXIMSTATS:-$(command -v eximstats)}"); oname=eximstats ;;
  *) echo "format must be postfix or exim" >&2; exit 2 ;;
esac
n=$(wc -l < "$log")
cat "$log" > /dev/null # page cache

# measure CMD...: prints "seconds peak_kb" of one run.
measure() {
  /usr/bin/time -o "$dir/time" -f "%e %M" "$@" > /dev/null 2>&1 || true
  tail -1 "$dir/time"
}
faster() { awk -v a="${1% *}" -v b="${2% *}" 'BEGIN { exit !(a < b) }'; }

rw_best="" pf_best="" cat_best=""
for _ in $(seq "$runs"); do
  # Alternate the tools so that both see the same machine state.
  r=$(measure "$bin" analyze --year 2026 --timezone UTC --local-domains example.org,example.net --progress never "$log")
  p=$(measure "${oracle[@]}" "$log")
  c=$(measure cat "$log")
  if [ -z "$rw_best" ] || faster "$r" "$rw_best"; then rw_best=$r; fi
  if [ -z "$pf_best" ] || faster "$p" "$pf_best"; then pf_best=$p; fi
  if [ -z "$cat_best" ] || faster "$c" "$cat_best"; then cat_best=$c; fi
done

report() { # name "seconds kb"
  local s=${2% *} kb=${2#* }
  awk -v n="$n" -v s="$s" -v kb="$kb" -v name="$1" 'BEGIN {
    if (s == 0) s = 0.005
    printf "%-12s %8.2f s  %12.0f lines/s  peak RSS %6.1f MiB\n", name, s, n / s, kb / 1024 }'
}
echo "$n lines, $(du -h "$log" | cut -f1), best of $runs alternating runs"
report relaywatch "$rw_best"
report "$oname" "$pf_best"
report cat "$cat_best"
awk -v a="${rw_best% *}" -v b="${pf_best% *}" -v o="$oname" 'BEGIN { if (a == 0) a = 0.005; printf "relaywatch / %s: %.1fx\n", o, b / a }'
