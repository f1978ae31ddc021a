#!/usr/bin/env python3
"""Checks one end-to-end run against a real MTA.

usage: check.py MTA WORKDIR TIMELINE

WORKDIR holds alerts.jsonl (relaywatch watch --alerts-log), slack.jsonl (the
Slack stand-in), metrics.txt (a scrape of /metrics at the end of the run) and
analyze.json (relaywatch analyze --output json on the same log).
"""
import datetime as dt, json, re, sys

mta, work, timeline = sys.argv[1], sys.argv[2], sys.argv[3]
ABUSERS = {"127.0.0.66", "127.0.0.77"}
HEALTHY = {"127.0.0.1", "127.0.0.20", "127.0.0.21", "127.0.0.22", "127.0.0.23", "127.0.0.24", "127.0.0.25", "127.0.0.30", "127.0.0.31", "127.0.0.99"}
fail = []

def keys(alerts, rule):
    return {a["key"] for a in alerts if a["rule"] == rule}

fired = [json.loads(l)["alert"] for l in open(f"{work}/alerts.jsonl") if json.loads(l)["transition"] == "fired"]
for rule, want in [("foreign-to-foreign", ABUSERS), ("unknown-relaying-client", ABUSERS),
                   ("outbound-spike", {"client:" + a for a in ABUSERS})]:
    got = keys(fired, rule)
    if rule == "outbound-spike":
        got = {k for k in got if k.startswith("client:")}
    if got != want:
        fail.append(f"{mta}: live {rule} keys {sorted(got)}, want {sorted(want)}")
for a in fired:
    if any(re.search(r"(^|[:\s\[])" + re.escape(h) + r"($|[\]\s])", a["key"]) for h in HEALTHY):
        fail.append(f"{mta}: a finding names a healthy client: {a['rule']} {a['key']}")
    if a["severity"] == "critical" and a["first_seen"] < "0":
        pass

# Within 5 s of the burst, Slack heard of each abuser.
burst = None
for l in open(timeline):
    if "abuse burst start" in l:
        burst = dt.datetime.strptime(l.split("\t")[0], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.timezone.utc).timestamp()
if burst is None:
    fail.append(f"{mta}: no burst in the timeline")
else:
    msgs = [json.loads(l) for l in open(f"{work}/slack.jsonl")]
    for ip in sorted(ABUSERS):
        times = [m["t"] for m in msgs if ip in m["body"] and "foreign-to-foreign" in m["body"]]
        if not times:
            fail.append(f"{mta}: Slack never heard of {ip}")
        elif min(times) - burst > 5:
            fail.append(f"{mta}: Slack heard of {ip} {min(times) - burst:.1f}s after the burst (limit 5s)")
        else:
            print(f"{mta}: Slack alerted on {ip} {min(times) - burst:.2f}s after the burst began")

# /metrics.
metrics = open(f"{work}/metrics.txt").read()
m = re.search(r'^relaywatch_alerts_fired_total\{rule="foreign-to-foreign",severity="critical"\} (\S+)$', metrics, re.M)
if not m or float(m.group(1)) != 2:
    fail.append(f"{mta}: /metrics alerts_fired_total for foreign-to-foreign is {m and m.group(1)}, want 2")
for h in ABUSERS | HEALTHY:
    if h in metrics:
        fail.append(f"{mta}: /metrics carries the address {h}")

# analyze on the produced log finds the same.
rep = json.load(open(f"{work}/analyze.json"))
for rule, want in [("foreign-to-foreign", ABUSERS), ("unknown-relaying-client", ABUSERS)]:
    got = {f["key"] for f in rep["findings"] if f["rule"] == rule}
    if got != want:
        fail.append(f"{mta}: analyze {rule} keys {sorted(got)}, want {sorted(want)}")

if fail:
    print("\n".join("FAIL " + f for f in fail))
    sys.exit(1)
print(f"{mta}: end-to-end checks passed")
