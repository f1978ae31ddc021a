#!/usr/bin/env bash
# End to end on the mail flows of real servers (issue 14): real Postfix behind
# a content filter with forwarding, real Exim with a redirect router
# (.ci/lab/realflows/run.sh, its own network namespace and directories).
# relaywatch analyze on each log must report exactly one CRITICAL incident,
# the open-relay abuser 127.0.0.66, whatever order the filter's hop and the
# re-injected copy were logged in; every forward must be "forwarded", never
# a finding; every hop confirmed; Postfix's totals equal pflogsumm's. With the
# MTA's configuration given (--postfix-config, --exim-config) the verdict is
# the same. Serialized with the other MTA labs by /tmp/relaywatch-mta.lock.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$(pwd)
work=$(mktemp -d /tmp/relaywatch-realflows-check.XXXXXX)
RUN=${RF_RUN:-/tmp/relaywatch-realflows}
# Everything is removed at the end; on failure the logs and reports are kept
# where CI keeps artifacts.
cleanup() {
  local rc=$?
  if [ "$rc" -ne 0 ]; then
    local a="${RELAYWATCH_ARTIFACTS:-$repo/.ci/artifacts}/realflows"
    mkdir -p "$a" && cp -r "$work"/out "$work"/*.json "$work"/*.stderr "$work"/lab.out "$a/" 2>/dev/null || true
    echo "real flows end-to-end failed: its logs are in $a" >&2
  fi
  rm -rf "$work" "$RUN"
}
trap cleanup EXIT
go build -o "$work/relaywatch" ./cmd/relaywatch
flock /tmp/relaywatch-mta.lock .ci/lab/realflows/run.sh "$work/out" > "$work/lab.out" 2>&1 || { tail -40 "$work/lab.out"; exit 1; }
check() { # mta log extra-args...
  local mta=$1 log=$2; shift 2
  set +e
  "$work/relaywatch" analyze --output json --trusted-networks 127.0.0.1/32 --progress never "$@" "$log" > "$work/$mta.json" 2> "$work/$mta.stderr"
  local rc=$?
  set -e
  [ "$rc" = 1 ] || { echo "FAIL $mta: analyze exit $rc, want 1"; exit 1; }
  python3 - "$mta" "$work/$mta.json" <<'PY'
import json, sys
mta, rep = sys.argv[1], json.load(open(sys.argv[2]))
crit = [i["client"] for i in rep["incidents"] if i["severity"] == "critical"]
above_info = [(f["rule"], f["key"]) for f in rep["findings"] if f["severity"] != "info" and f["key"] != "127.0.0.66"]
d, c = rep["deliveries"], rep["correlation"]
bad = []
if crit != ["127.0.0.66"]: bad.append(f"critical incidents {crit}, want exactly 127.0.0.66")
if above_info: bad.append(f"findings above info about others: {above_info}")
if d.get("forwarded/sent", 0) < 5: bad.append(f"forwarded deliveries {d.get('forwarded/sent', 0)}, want >= 5")
if c["hops_unconfirmed"] or c["copies_parent_never_seen"]: bad.append(f"correlation {c}")
if mta == "postfix" and d.get("hop/sent", 0) < 20: bad.append(f"content-filter hops {d.get('hop/sent', 0)}")
if bad:
    print(f"FAIL {mta}:", "; ".join(bad)); sys.exit(1)
print(f"{mta}: one critical incident (127.0.0.66); forwarded {d.get('forwarded/sent')}, hops {d.get('hop/sent', 0)}")
PY
}
check postfix "$work/out/postfix-realflows.log" --local-domains example.org
check exim "$work/out/exim-realflows.log" --local-domains example.org
cp "$work/postfix.json" "$work/postfix-flags.json"
check postfix "$work/out/postfix-realflows.log" --postfix-config "$RUN/etc"
check exim "$work/out/exim-realflows.log" --exim-config "$RUN/exim/exim4.conf"
cp "$work/postfix-flags.json" "$work/postfix.json"
pflogsumm "$work/out/postfix-realflows.log" > "$work/pflogsumm.txt"
python3 - "$work/postfix.json" "$work/pflogsumm.txt" <<'PY'
import json, re, sys
t = json.load(open(sys.argv[1]))["totals"]
p = open(sys.argv[2]).read().split("Per-Hour")[0]
def pf(label):
    return int(re.search(r"^\s+(\d+)\s+" + label + r"\b", p, re.M).group(1))
bad = [(k, t[k], pf(k)) for k in ("received", "delivered", "forwarded", "deferred", "bounced", "rejected", "senders", "recipients") if t[k] != pf(k)]
if bad:
    print("FAIL postfix totals differ from pflogsumm's (relaywatch, pflogsumm):", bad); sys.exit(1)
print("postfix: totals equal pflogsumm's (content-filter re-injections not received)")
PY
echo "real flows end-to-end passed"
