#!/usr/bin/env bash
# End to end for `relaywatch probe` (issue 15): real Postfix and real Exim, each
# closed, open and partially open, on loopback addresses inside a network
# namespace of their own ($PROBE_NETNS, default rwprobe, whose only interface is
# lo), probed by relaywatch from inside it. The verdicts are checked:
#   closed  -> exit 0, nothing accepted
#   open    -> exit 1
#   partial -> exit 1, naming the accepted variants: Postfix accepts a forged
#              local sender from anyone (check_sender_access), Exim relays the
#              percent hack through an old-style redirect router that rewrites
#              user%victim@ourdomain after the RCPT ACL accepted it.
# Then relaywatch analyze reads each server's own log of the probe.
#
# The host's MTA is never touched: Postfix and Exim are unpacked from their
# Debian packages (apt-get download + dpkg -x) into a temporary directory and run
# from there, Postfix with `postfix -c DIR` and its own queue and data
# directories, Exim with `-C FILE` and its own spool; nothing is written to
# /etc/postfix, /etc/exim4 or the host's queues. What may change on the host:
# the runtime libraries Exim needs (apt-get install, as the lab does) and the
# system accounts postfix/postdrop and Debian-exim, created when missing (the
# names the Debian packages use). Every daemon, the namespace and the temporary
# directory are removed at the end, pass or fail. Needs root. Run it under
# `flock /tmp/relaywatch-mta.lock` where other MTA tests may run at once.
# PROBE_KEEP=DIR keeps the results and the servers' configs and logs there.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ "$(id -u)" = 0 ] || { echo "probe.sh: needs root (network namespace, MTA daemons)" >&2; exit 1; }
export DEBIAN_FRONTEND=noninteractive LC_ALL=C
NS=${PROBE_NETNS:-rwprobe}
work=$(mktemp -d /tmp/rwprobe.XXXXXX)
chmod 755 "$work"
root="$work/root"   # the unpacked packages
pf_lib="$root/usr/lib/postfix"
exim="$root/usr/sbin/exim4"

in_ns() { ip netns exec "$NS" "$@"; }
pf() { in_ns env LD_LIBRARY_PATH="$pf_lib" "$root/usr/sbin/postfix" "$@"; }

ns_created=""
cleanup() {
  local status=$?
  set +e
  for d in "$work"/postfix-*; do
    [ -f "$d/main.cf" ] || continue
    pf -c "$d" stop >/dev/null 2>&1
    p=$(cat "$d/queue/pid/master.pid" 2>/dev/null | tr -d ' ')
    [ -n "$p" ] && kill "$p" 2>/dev/null
  done
  for f in "$work"/exim-*/exim.pid; do
    [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null
  done
  if [ -n "$ns_created" ]; then
    for i in 1 2 3 4 5 6 7 8 9 10; do
      [ -z "$(ip netns pids "$NS" 2>/dev/null)" ] && break
      sleep 0.5
    done
    pids=$(ip netns pids "$NS" 2>/dev/null)
    [ -n "$pids" ] && { echo "probe.sh: killing what is left in $NS: $pids" >&2; kill -9 $pids; sleep 0.5; }
    ip netns del "$NS" 2>/dev/null
  fi
  if [ -n "${PROBE_KEEP:-}" ]; then
    # Keep the results and the servers' logs for a look (PROBE_KEEP=DIR).
    rm -rf "$PROBE_KEEP"; mkdir -p "$PROBE_KEEP"
    cp -r "$work/out" "$PROBE_KEEP/" 2>/dev/null
    for d in "$work"/postfix-* "$work"/exim-*; do
      mkdir -p "$PROBE_KEEP/${d##*/}"; cp "$d"/*.cf "$d"/*.conf "$d"/*log "$d"/mail.log "$PROBE_KEEP/${d##*/}/" 2>/dev/null
    done
    echo "probe.sh: results and logs kept in $PROBE_KEEP" >&2
  fi
  rm -rf "$work"
  exit $status
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== probe e2e: unpack Postfix and Exim into $work"
mkdir -p "$work/debs" "$root"
chown _apt "$work/debs" 2>/dev/null || true
(cd "$work/debs" && { apt-get download -q postfix exim4-daemon-light >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get download -q postfix exim4-daemon-light >/dev/null; }; })
for f in "$work"/debs/*.deb; do dpkg -x "$f" "$root"; done
# Postfix looks for dynamicmaps.cf in meta_directory (the package's postinst writes it).
: > "$root/etc/postfix/dynamicmaps.cf"
if LD_LIBRARY_PATH="$pf_lib" ldd "$exim" "$root/usr/lib/postfix/sbin/smtpd" | grep -q 'not found'; then
  libs="libdb5.3 libgnutls-dane0 libgnutls30 libidn12 libidn2-0 libnsl2 libpcre2-8-0 libcrypt1 libsasl2-2 libssl3 libicu72"
  apt-get install -y -q --no-install-recommends $libs >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends $libs >/dev/null; }
fi
command -v openssl >/dev/null || apt-get install -y -q --no-install-recommends openssl >/dev/null
getent group postdrop >/dev/null || groupadd --system postdrop
getent passwd postfix >/dev/null || useradd --system --user-group --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin postfix
getent passwd Debian-exim >/dev/null || useradd --system --user-group --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin Debian-exim
echo "postfix $(LD_LIBRARY_PATH="$pf_lib" "$root/usr/sbin/postconf" -d -h mail_version), $("$exim" -C /dev/null -bV 2>/dev/null | head -1 | cut -c1-40)"

echo "== network namespace $NS (lo only)"
ip netns list | grep -qw "$NS" && { echo "namespace $NS exists already: another run? (PROBE_NETNS names another)" >&2; exit 1; }
ip netns add "$NS"
ns_created=1
ip -n "$NS" link set lo up
for a in 11 12 13 21 22 23 99; do ip -n "$NS" addr add "127.0.0.$a/32" dev lo; done
[ "$(ip -n "$NS" -br link | awk '{print $1}' | tr '\n' ' ')" = "lo " ] || { echo "namespace $NS has more than lo" >&2; exit 1; }

# A throwaway certificate for Postfix's STARTTLS and port 465 (Exim makes its own).
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=mail.example.org \
  -keyout "$work/tls.key" -out "$work/tls.crt" >/dev/null 2>&1
chmod 644 "$work/tls.key"

# start_postfix MODE ADDRESS: closed, open or partial.
start_postfix() {
  local mode=$1 addr=$2 d="$work/postfix-$1"
  mkdir -p "$d/queue" "$d/data"
  chown postfix "$d/data"
  cat > "$d/main.cf" <<EOF
# relaywatch probe e2e: Postfix ($mode), loopback only, no DNS, never delivers.
compatibility_level = 3.6
config_directory = $d
queue_directory = $d/queue
data_directory = $d/data
command_directory = $root/usr/sbin
daemon_directory = $root/usr/lib/postfix/sbin
shlib_directory = $pf_lib
meta_directory = $root/etc/postfix
mail_owner = postfix
setgid_group = postdrop
import_environment = MAIL_CONFIG MAIL_DEBUG MAIL_LOGTAG TZ LANG=C POSTLOG_SERVICE POSTLOG_HOSTNAME LD_LIBRARY_PATH=$pf_lib
myhostname = mail.example.org
mydomain = example.org
myorigin = \$mydomain
mydestination = example.org, \$myhostname, localhost
inet_interfaces = $addr
inet_protocols = ipv4
mynetworks = 127.0.0.1/32
maillog_file = $d/mail.log
maillog_file_prefixes = $work
smtp_dns_support_level = disabled
smtpd_peername_lookup = no
relayhost = [127.0.0.1]:2599
defer_transports = smtp
alias_maps =
alias_database =
local_recipient_maps = inline:{alice=ok, postmaster=ok}
biff = no
smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination
smtpd_tls_security_level = may
smtpd_tls_cert_file = $work/tls.crt
smtpd_tls_key_file = $work/tls.key
EOF
  case $mode in
    open) echo "mynetworks = 0.0.0.0/0" >> "$d/main.cf" ;;
    partial) echo "smtpd_relay_restrictions = permit_mynetworks, check_sender_access inline:{example.org=OK}, reject_unauth_destination" >> "$d/main.cf" ;;
  esac
  cat > "$d/master.cf" <<EOF
smtp      inet  n       -       n       -       -       smtpd
$addr:465 inet  n       -       n       -       -       smtpd -o smtpd_tls_wrappermode=yes
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
  pf -c "$d" start >/dev/null 2>&1 || { grep -v warning "$d/mail.log" >&2; return 1; }
}

# start_exim MODE ADDRESS
start_exim() {
  local mode=$1 addr=$2 d="$work/exim-$1"
  mkdir -p "$d/spool"
  chown Debian-exim "$d" "$d/spool"
  local relay_from=127.0.0.1 percent_router=""
  [ "$mode" = open ] && relay_from='*'
  if [ "$mode" = partial ]; then
    # The old way of supporting the percent hack: a redirect router for local
    # domains that turns user%victim@ourdomain into user@victim. The RCPT ACL
    # accepts the local domain and verifies the recipient through this router.
    percent_router='percent_hack:
  driver = redirect
  domains = +local_domains
  condition = ${if match{$local_part}{\N^[^%]+%[^%]+$\N}}
  data = ${sg{$local_part}{\N^([^%]+)%([^%]+)$\N}{\$1@\$2}}
'
  fi
  cat > "$d/exim.conf" <<EOF
# relaywatch probe e2e: Exim ($mode), loopback only, no DNS, never delivers.
exim_path = $exim
primary_hostname = mail.example.org
domainlist local_domains = example.org : mail.example.org
hostlist relay_from_hosts = $relay_from
local_interfaces = $addr
daemon_smtp_ports = 25
spool_directory = $d/spool
log_file_path = $d/%slog
host_lookup =
rfc1413_hosts =
rfc1413_query_timeout = 0s
queue_only = true
acl_smtp_rcpt = acl_check_rcpt

begin acl
acl_check_rcpt:
  accept  hosts = +relay_from_hosts
  require message = relay not permitted
          domains = +local_domains
  require verify = recipient
  accept

begin routers
${percent_router}remote:
  driver = manualroute
  domains = ! +local_domains
  transport = remote_smtp
  route_list = * 127.0.0.1::2599
  self = send
  no_more
local_user:
  driver = accept
  domains = +local_domains
  local_parts = alice : postmaster
  transport = local_delivery

begin transports
remote_smtp:
  driver = smtp
local_delivery:
  driver = appendfile
  file = $d/mailbox
  user = Debian-exim
EOF
  in_ns "$exim" -C "$d/exim.conf" -bd -oP "$d/exim.pid" || { cat "$d"/*log >&2; return 1; }
}

for m in closed:11 open:12 partial:13; do start_postfix "${m%:*}" "127.0.0.${m#*:}"; done
for m in closed:21 open:22 partial:23; do start_exim "${m%:*}" "127.0.0.${m#*:}"; done
for i in $(seq 1 50); do
  n=$(in_ns ss -tln | grep -cE '127\.0\.0\.(1[123]|2[123]):25 ') || true
  [ "$n" = 6 ] && break
  sleep 0.2
done
in_ns ss -tln | grep -E ':(25|465) ' || true
[ "$n" = 6 ] || { echo "not every MTA is listening ($n of 6)" >&2; cat "$work"/postfix-*/mail.log "$work"/exim-*/*log >&2; exit 1; }

bin="$work/relaywatch"
out="$work/out"
mkdir -p "$out"
go build -o "$bin" ./cmd/relaywatch

echo "== probing from 127.0.0.99 (in parallel: Postfix slows down a client after 10 errors)"
client=127.0.0.99
# probe NAME ADDRESS [flags]: writes NAME.json and NAME.exit.
probe() {
  local name=$1 addr=$2; shift 2
  set +e
  in_ns "$bin" probe --source "$client" --timeout 20s --local-domains example.org -o json "$@" "$addr" > "$out/$name.json" 2> "$out/$name.stderr"
  echo $? > "$out/$name.exit"
}
probe postfix-closed 127.0.0.11 &
probe postfix-closed-tls 127.0.0.11 --tls &
probe postfix-open 127.0.0.12 &
probe postfix-partial 127.0.0.13 &
probe exim-closed 127.0.0.21 &
probe exim-open 127.0.0.22 &
probe exim-partial 127.0.0.23 &
wait

echo "== verdicts"
python3 - "$out" <<'PY'
import json, sys
work = sys.argv[1]
# name: (exit status, TLS, variants that must be accepted, variants that must be refused)
want = {
    "postfix-closed":     (0, "starttls", set(), None),
    "postfix-closed-tls": (0, "implicit", set(), None),
    "postfix-open":       (1, "starttls", {"null-sender", "foreign-sender", "forged-local-sender"}, set()),
    "postfix-partial":    (1, "starttls", {"forged-local-sender"}, {"null-sender", "foreign-sender", "sender-at-ip-literal"}),
    "exim-closed":        (0, "starttls", set(), None),
    "exim-open":          (1, "starttls", {"null-sender", "foreign-sender", "forged-local-sender"}, set()),
    "exim-partial":       (1, "starttls", {"percent-hack-server-name"}, {"null-sender", "foreign-sender", "forged-local-sender"}),
}
bad = []
for name, (code, tls, must, mustnot) in want.items():
    got = int(open(f"{work}/{name}.exit").read())
    try:
        r = json.load(open(f"{work}/{name}.json"))
    except ValueError:
        bad.append(f"{name}: no JSON (exit {got}): {open(f'{work}/{name}.stderr').read()}")
        continue
    acc = {a["variant"]["name"] for a in r["attempts"] if a["verdict"] == "accepted"}
    errs = [(a["variant"]["name"], a.get("error")) for a in r["attempts"] if a["verdict"] == "error"]
    print(f"{name:19} exit {got}  {r['verdict']:7} tls={r['tls']:8} accepted {r['accepted']:2}/{len(r['attempts'])}"
          f" refused {r['refused']:2} errors {r['errors']} connections {r['connections']}: {', '.join(sorted(acc)) or '-'}")
    if got != code:
        bad.append(f"{name}: exit {got}, want {code}")
    if r["tls"] != tls:
        bad.append(f"{name}: TLS {r['tls']}, want {tls}")
    if len(r["attempts"]) != 17 or errs:
        bad.append(f"{name}: {len(r['attempts'])} attempts, errors {errs}")
    if code == 0 and (r["accepted"] != 0 or r["verdict"] != "closed"):
        bad.append(f"{name}: closed server, but {r['accepted']} accepted")
    if not must <= acc:
        bad.append(f"{name}: {sorted(must - acc)} not accepted")
    if mustnot is not None and mustnot & acc:
        bad.append(f"{name}: {sorted(mustnot & acc)} accepted, must be refused")
    if mustnot is None and acc:
        bad.append(f"{name}: accepted {sorted(acc)}")
if bad:
    print("FAIL probe verdicts:\n  " + "\n  ".join(bad))
    sys.exit(1)
PY
# The table a person sees, once.
in_ns "$bin" probe --source "$client" --timeout 20s --local-domains example.org 127.0.0.23 > "$out/exim-partial.txt" || true
grep -E 'percent-hack-server-name|^open relay' "$out/exim-partial.txt"
grep -q '^open relay: 1 of 17 variants accepted' "$out/exim-partial.txt"

echo "== no mail left the servers (the probe never sends DATA)"
for d in "$work"/postfix-*; do
  n=$(find "$d/queue/incoming" "$d/queue/active" "$d/queue/deferred" "$d/queue/maildrop" -type f | wc -l)
  [ "$n" = 0 ] || { echo "FAIL: $d has $n queued messages" >&2; exit 1; }
done
for d in "$work"/exim-*; do
  n=$(find "$d/spool" -type f -name '*-H' | wc -l)
  [ "$n" = 0 ] || { echo "FAIL: $d has $n queued messages" >&2; exit 1; }
done

echo "== the servers' logs of the probe, read by relaywatch parse and analyze"
# Each server's log must show the probe: every refused recipient as a reject
# from the probe's address (Exim does not log 501 syntax errors by default),
# and on Postfix every accepted recipient as a transaction opened for it
# ("client=", never followed by a message: no DATA). analyze must read the
# log whole and count those rejections.
for name in postfix-closed postfix-open postfix-partial exim-closed exim-open exim-partial; do
  log="$work/$name/mail.log"; [ -f "$log" ] || log="$work/$name/mainlog"
  "$bin" parse "$log" > "$out/$name.events.jsonl"
  set +e
  "$bin" analyze --output json --trusted-networks 127.0.0.1/32 --local-domains example.org --progress never "$log" > "$out/$name.analyze.json"
  s=$?
  set -e
  [ $s -le 1 ] || { echo "FAIL: analyze of $log: exit $s" >&2; exit 1; }
done
python3 - "$out" "$client" <<'PY'
import json, sys
out, client = sys.argv[1], sys.argv[2]
servers = {"postfix-closed": ["postfix-closed", "postfix-closed-tls"], "postfix-open": ["postfix-open"],
           "postfix-partial": ["postfix-partial"], "exim-closed": ["exim-closed"], "exim-open": ["exim-open"],
           "exim-partial": ["exim-partial", "exim-partial"]}  # probed twice: the second time for the table
bad = []
for server, probes in servers.items():
    exim = server.startswith("exim")
    results = [json.load(open(f"{out}/{p}.json")) for p in probes]
    refused = sum(1 for r in results for a in r["attempts"]
                  if a["verdict"] == "refused" and a.get("rcpt_reply") and not (exim and a["rcpt_reply"]["code"] in (500, 501)))
    accepted = sum(r["accepted"] for r in results)
    events = [json.loads(l) for l in open(f"{out}/{server}.events.jsonl")]
    rejects = sum(1 for e in events if e["kind"] == "reject" and e.get("stage") == "RCPT" and e.get("client_ip") == client)
    opened = sum(1 for e in events if e["kind"] == "accept" and e.get("client_ip") == client)
    a = json.load(open(f"{out}/{server}.analyze.json"))
    lines, t = a["lines"], a["totals"]
    print(f"{server:16} log: {lines['total']:3} lines; RCPT rejects from {client}: {rejects:2} (probe refused {refused:2});"
          f" transactions opened: {opened:2} (probe accepted {accepted:2}); analyze: rejected {t['rejected']}, findings {len(a['findings'])}")
    if lines["malformed"] or lines["unrecognized"]:
        bad.append(f"{server}: analyze could not read every line: {lines}")
    if rejects != refused:
        bad.append(f"{server}: {rejects} RCPT rejects logged, the probe was refused {refused}")
    # (analyze also counts Exim's "dropped: too many syntax or protocol errors")
    if t["rejected"] < rejects:
        bad.append(f"{server}: analyze counts {t['rejected']} rejections, the log has {rejects} of the probe's recipients")
    if not exim and opened != accepted:
        bad.append(f"{server}: {opened} transactions opened for the probe, it had {accepted} recipients accepted")
if bad:
    print("FAIL the servers' logs of the probe:\n  " + "\n  ".join(bad)); sys.exit(1)
PY
echo "probe end-to-end passed"
