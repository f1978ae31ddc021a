#!/usr/bin/env bash
# End to end against real Postfix and Exim (issue 7): each MTA runs in a
# loopback-only network namespace (.ci/lab, adapted from ../shared/lab),
# first healthy, then an open relay abused by two clients. relaywatch watch
# follows the live log and must alert Slack (a stand-in on loopback) and
# /metrics on exactly the two abusers within 5 s of the burst; relaywatch
# analyze on the log must agree, and its Postfix totals must equal pflogsumm's.
# Nothing leaves 127.0.0.0/8; every daemon is stopped at the end, pass or fail.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$(pwd)
export LAB_RUN=/tmp/lab LAB_OUT=/tmp/lab/logs DRAIN=${DRAIN:-20} SPAM_MSGS=${SPAM_MSGS:-150} NORMAL_PACE=${NORMAL_PACE:-0.8}
work=$(mktemp -d)
bin="$work/relaywatch"
go build -o "$bin" ./cmd/relaywatch
port=$((20000 + RANDOM % 10000))
python3 .ci/e2e/slack_sink.py "$port" "$work/slack-all.jsonl" &
sink=$!
watch_pid=""
cleanup() {
  [ -n "$watch_pid" ] && kill "$watch_pid" 2>/dev/null || true
  kill "$sink" 2>/dev/null || true
  .ci/lab/postfix/stop.sh >/dev/null 2>&1 || true
  .ci/lab/exim/stop.sh >/dev/null 2>&1 || true
}
trap cleanup EXIT

run_mta() { # postfix|exim LOG
  local mta=$1 log=$2
  local w="$work/$mta"
  mkdir -p "$w"
  : > "$work/slack-all.jsonl"
  "$bin" watch --state-dir "$w/state" --listen 127.0.0.1:9792 --trusted-networks 127.0.0.1/32 \
    --local-domains example.org --timezone Local --instance mail --resolve-after 1h \
    --slack-webhook "http://127.0.0.1:$port/services/e2e" --alerts-log "$w/alerts.jsonl" "$log" 2> "$w/watch.stderr" &
  watch_pid=$!
  sleep 1
  ".ci/lab/$mta/run-lab.sh" > "$w/lab.out" 2>&1 || { tail -40 "$w/lab.out"; return 1; }
  sleep 2
  curl -sf http://127.0.0.1:9792/metrics > "$w/metrics.txt"
  kill -TERM "$watch_pid"; wait "$watch_pid" || true; watch_pid=""
  cp "$work/slack-all.jsonl" "$w/slack.jsonl"
  local copy="$LAB_OUT/$mta-mail.log"; [ "$mta" = exim ] && copy="$LAB_OUT/exim-mainlog"
  set +e
  "$bin" analyze --output json --trusted-networks 127.0.0.1/32 --local-domains example.org --timezone Local --progress never "$copy" > "$w/analyze.json"
  [ $? -le 1 ] || { echo "analyze failed"; return 1; }
  set -e
  python3 .ci/e2e/check.py "$mta" "$w" "$LAB_OUT/$mta-timeline.tsv"
  if [ "$mta" = postfix ]; then
    pflogsumm "$copy" > "$w/pflogsumm.txt"
    python3 - "$w/analyze.json" "$w/pflogsumm.txt" <<'PY'
import json, re, sys
t = json.load(open(sys.argv[1]))["totals"]
p = open(sys.argv[2]).read().split("Per-Hour")[0]
def pf(label):
    m = re.search(r"^\s+(\d+)\s+" + label + r"\b", p, re.M)
    return int(m.group(1))
bad = [(k, t[k], pf(k)) for k in ("received", "delivered", "deferred", "bounced", "rejected") if t[k] != pf(k)]
m = re.search(r"\((\d+)\s+deferrals\)", p)
if m and int(m.group(1)) != t["deferrals"]:
    bad.append(("deferrals", t["deferrals"], int(m.group(1))))
if bad:
    print("FAIL postfix totals differ from pflogsumm (relaywatch, pflogsumm):", bad); sys.exit(1)
print("postfix: totals equal pflogsumm's:", {k: t[k] for k in ("received", "delivered", "deferred", "deferrals", "bounced", "rejected")})
PY
  fi
}

run_mta postfix "$LAB_RUN/postfix/mail.log"
run_mta exim "$LAB_RUN/exim/mainlog"
echo "end-to-end passed"
