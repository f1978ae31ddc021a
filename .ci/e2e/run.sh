#!/usr/bin/env bash
# End to end against real Postfix and Exim (issue 7): each MTA runs in a
# loopback-only network namespace (.ci/lab, adapted from ../shared/lab),
# first healthy, then an open relay abused by two clients. relaywatch watch
# follows the live log and must alert Slack (a stand-in on loopback) and
# /metrics on exactly the two abusers within 5 s of the burst; relaywatch
# analyze on the log must agree, and its Postfix totals must equal pflogsumm's.
#
# What it does to the host: nothing leaves 127.0.0.0/8 (its own network
# namespace, relaywatch-e2e); Postfix runs with its own configuration, queue and
# data directories (postfix -c) and Exim with -C and its own spool, all in a
# fresh directory under /tmp that is removed at the end, pass or fail, with
# every daemon stopped. /etc/postfix, /etc/exim4 and the host's queues are
# never written. Missing Debian packages (postfix, swaks, pflogsumm, sasl2-bin)
# are installed and the Debian-exim user is added, but on a host whose own MTA
# is configured or has mail queued the lab refuses that unless CI=true or
# RELAYWATCH_E2E_DISPOSABLE=1. Needs root. Skip it with RELAYWATCH_SKIP_E2E=1.
# RELAYWATCH_E2E_KEEP=1 keeps the run's logs in .ci/artifacts/e2e after a pass too.
# Runs under flock /tmp/relaywatch-mta.lock (one real-MTA run at a time).
set -euo pipefail
if [ -z "${RELAYWATCH_MTA_LOCKED:-}" ]; then
  exec env RELAYWATCH_MTA_LOCKED=1 flock /tmp/relaywatch-mta.lock "$0" "$@"
fi
cd "$(dirname "$0")/../.."
repo=$(pwd)
[ "$(id -u)" = 0 ] || { echo "the end-to-end test needs root (network namespaces, real MTAs); skip it with RELAYWATCH_SKIP_E2E=1" >&2; exit 1; }
work=$(mktemp -d /tmp/relaywatch-e2e.XXXXXX)
chmod 755 "$work"
export LAB_RUN="$work/lab" NETNS=relaywatch-e2e
export LAB_OUT="$LAB_RUN/logs" DRAIN=${DRAIN:-20} SPAM_MSGS=${SPAM_MSGS:-150} NORMAL_PACE=${NORMAL_PACE:-0.8}
bin="$work/relaywatch"
go build -o "$bin" ./cmd/relaywatch
port=$((20000 + RANDOM % 10000))
python3 .ci/e2e/slack_sink.py "$port" "$work/slack-all.jsonl" &
sink=$!
watch_pid=""
cleanup() {
  local rc=$?
  [ -n "$watch_pid" ] && kill "$watch_pid" 2>/dev/null || true
  kill "$sink" 2>/dev/null || true
  .ci/lab/postfix/stop.sh >/dev/null 2>&1 || true
  .ci/lab/exim/stop.sh >/dev/null 2>&1 || true
  if [ "$rc" -ne 0 ] || [ -n "${RELAYWATCH_E2E_KEEP:-}" ]; then # keep what explains a failure where CI keeps artifacts
    local a="${RELAYWATCH_ARTIFACTS:-$repo/.ci/artifacts}/e2e"
    mkdir -p "$a" && cp -r "$work"/postfix "$work"/exim "$LAB_OUT" "$a/" 2>/dev/null || true
    [ "$rc" -ne 0 ] && echo "end-to-end failed: its logs are in $a" >&2
  fi
  rm -rf "$work"
}
trap cleanup EXIT

run_mta() { # postfix|exim LOG
  local mta=$1 log=$2
  local w="$work/$mta"
  mkdir -p "$w"
  : > "$work/slack-all.jsonl"
  # --mta-config none: the trust model is the flags'. The host's own
  # /etc/postfix (Debian's default trusts all of 127.0.0.0/8) is not this
  # lab's server, whose abusers are 127.0.0.66 and 127.0.0.77.
  "$bin" watch --mta-config none --state-dir "$w/state" --listen 127.0.0.1:9792 --trusted-networks 127.0.0.1/32 \
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
