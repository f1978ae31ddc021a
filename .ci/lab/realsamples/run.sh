#!/usr/bin/env bash
# The real-samples lab: real Postfix (the Debian package, started with its
# own configuration directory: postfix -c DIR; /etc/postfix is never
# written) and real Exim (extracted from the Debian package, run with -C;
# nothing in /etc/exim4) write the logs behind three samples:
#   compromised  Postfix: a user's password is guessed, then used for a spam run
#   blocklisted  Postfix: receivers refuse our mail citing blocklists
#   backscatter  Exim: mail to unknown users from forged senders bounces into
#                a queue of deferred bounces
# The "Internet" is two more real MTAs: a second Postfix (receivers.cf) whose
# receivers refuse through reject_rbl_client, asking the lab's DNS
# (dnsbl.py) where our address is listed, and an Exim playing Gmail
# (gmail.conf). Everything runs in its own network namespace with nothing
# but lo (the clients' addresses, documentation ranges among them, are on
# lo); the receiving Postfix sees the lab's DNS through a bind mount over
# /etc/resolv.conf in a mount namespace of its own (the host's file is not
# touched).
#
# Usage (as root; serialize with the other MTA labs; takes about 6 minutes):
#   flock /tmp/relaywatch-mta.lock .ci/lab/realsamples/run.sh OUTDIR
# Writes OUTDIR/{postfix-compromised,postfix-blocklisted,exim-backscatter}.log
# and the ledgers of what was sent; removes its run directory at the end
# (RS_KEEP=1 keeps it).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$(mkdir -p "${1:-/tmp/relaywatch-realsamples-out}" && cd "${1:-/tmp/relaywatch-realsamples-out}" && pwd)
RUN=${RS_RUN:-/tmp/relaywatch-realsamples}
NS=${RS_NS:-rwrealsamples}
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
case "$out/" in "$RUN"/*) echo "OUTDIR must not be under $RUN (removed at the end)" >&2; exit 2;; esac
export DEBIAN_FRONTEND=noninteractive
in_ns() { ip netns exec "$NS" "$@"; }
# in_ns_bg CMD...: CMD in the namespace, in the background, its pid in pids
# (not a subshell's: cleanup kills it)
in_ns_bg() { ip netns exec "$NS" "$@" & pids+=($!); }
# lab FUNCTION ARGS... runs a function of ../common.sh (host_change, which
# refuses to change a host whose own MTA is in use unless CI=true or
# RELAYWATCH_E2E_DISPOSABLE=1; postfix_packages, lo_netns, unpack_exim).
lab() { bash -c '. "$1"; shift; "$@"' _ "$here/../common.sh" "$@"; }

pids=()
cleanup() {
  set +e
  [ -f "$RUN/etc/main.cf" ] && postfix -c "$RUN/etc" stop >/dev/null 2>&1
  # in the namespace: postfix(1) wants the receivers' inet_interfaces to be local
  [ -f "$RUN/receivers/etc/main.cf" ] && in_ns postfix -c "$RUN/receivers/etc" stop >/dev/null 2>&1
  for f in "$RUN/exim/daemon.pid" "$RUN/gmail/daemon.pid"; do
    [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null
  done
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  sleep 1
  ip netns pids "$NS" 2>/dev/null | xargs -r kill 2>/dev/null
  for _ in 1 2 3 4 5 6; do [ -z "$(ip netns pids "$NS" 2>/dev/null)" ] && break; sleep 0.5; done
  ip netns pids "$NS" 2>/dev/null | xargs -r kill -KILL 2>/dev/null
  ip netns del "$NS" 2>/dev/null
  [ "${RS_KEEP:-}" = 1 ] || rm -rf "$RUN"
}
trap cleanup EXIT

# ---- tools (Debian packages) -------------------------------------------------
lab postfix_packages

# ---- a network namespace with nothing but lo --------------------------------
lab lo_netns "$NS"
# On lo, so that nothing can leave the namespace (documentation and
# benchmarking ranges): the clients from outside (five /24s), our servers'
# "public" address 198.18.0.25, and the Internet's MX hosts 198.18.1.x
# (198.18.1.66 is an MX that is down: nothing listens there).
for a in 192.0.2.10 198.51.100.23 198.51.100.24 203.0.113.50 203.0.113.51 203.0.113.52 203.0.113.77 203.0.113.78 198.18.4.9 198.19.12.5 \
         198.18.0.25 198.18.1.1 198.18.1.101 198.18.1.102 198.18.1.103 198.18.1.104 198.18.1.105 198.18.1.106 198.18.1.66; do
  ip -n "$NS" addr add "$a/32" dev lo
done

rm -rf "$RUN"; mkdir -p "$RUN/etc/sasl" "$RUN/data" "$RUN/spool" "$RUN/vmail" "$RUN/receivers/etc" "$RUN/receivers/data" "$RUN/receivers/spool" "$out"
chown nobody:nogroup "$RUN/vmail"; chown postfix "$RUN/data" "$RUN/receivers/data"
# wait_port PORT [ADDRESS]
wait_port() { for _ in $(seq 1 50); do in_ns python3 -c "import socket; socket.create_connection(('${2:-127.0.0.1}', $1), 1)" 2>/dev/null && return 0; sleep 0.1; done; echo "FATAL: nothing listens on ${2:-127.0.0.1}:$1" >&2; return 1; }

# ---- Exim (the Debian package, extracted) ----------------------------------------
EXIM=${RS_EXIM:-}
if [ -z "$EXIM" ]; then
  # under $RUN: nothing is left on the host
  lab unpack_exim "$RUN/exim-root" "${RS_DEBS:-$RUN/debs}"
  EXIM="$RUN/exim-root/usr/sbin/exim4"
fi
# exim_conf NAME FILE: our configuration FILE for the Exim instance NAME
exim_conf() {
  mkdir -p "$RUN/$1/spool" "$RUN/$1/vmail"
  sed -e "s#RUN#$RUN#g" -e "s#EXIM#$EXIM#g" "$here/$2" > "$RUN/$1/exim4.conf"
  chown -R Debian-exim:Debian-exim "$RUN/$1"; chmod 755 "$RUN" "$RUN/$1"
  chown root:root "$RUN/$1/exim4.conf"; chmod 644 "$RUN/$1/exim4.conf" # Exim insists
  "$EXIM" -C "$RUN/$1/exim4.conf" -bV >/dev/null
}
# Not in Exim's TRUSTED_CONFIG_LIST: the daemons run as Debian-exim, hence
# the unprivileged ports.
exim_conf gmail gmail.conf
in_ns_bg "$EXIM" -C "$RUN/gmail/exim4.conf" -bd -oP "$RUN/gmail/daemon.pid" 2> "$RUN/gmail/daemon.stderr"
wait_port 10027 198.18.1.102

# ---- the receiving Postfix and the blocklists' DNS ----------------------------
in_ns_bg python3 "$here/dnsbl.py" "zen.spamhaus.org=https://www.spamhaus.org/query/ip/{ip}" s3150.blocklist.outlook.test tss04.reputation.yahoo.test
sed "s#RUN#$RUN#g" "$here/receivers.cf" > "$RUN/receivers/etc/main.cf"
cp "$here/receivers.master.cf" "$RUN/receivers/etc/master.cf"
awk -v dir="$RUN/receivers/etc" '/^#/ || /^$/ {next} /^== / {f = dir "/" $2; next} {print > f}' "$here/receivers.tables"
printf 'nameserver 127.0.0.1\n' > "$RUN/receivers/resolv.conf"
in_ns postfix -c "$RUN/receivers/etc" check # in the namespace, where its addresses are
in_ns unshare --mount --propagation private sh -c 'mount --bind "$1/receivers/resolv.conf" /etc/resolv.conf && exec postfix -c "$1/receivers/etc" start' _ "$RUN"
wait_port 25 198.18.1.1

# ---- Postfix -------------------------------------------------------------------
sed "s#RUN#$RUN#g" "$here/main.cf" > "$RUN/etc/main.cf"
cp "$here/master.cf" "$RUN/etc/master.cf"
printf 'alice@example.org alice/\nbob@example.org bob/\n' > "$RUN/etc/vmailbox"
# each refusing receiver on an address of its own, Gmail on Exim
{ echo "gmail.test smtp:[198.18.1.102]:10027"
  echo "outlook.test smtp:[198.18.1.101]"; echo "hotmail.test smtp:[198.18.1.101]"
  echo "yahoo.test smtp:[198.18.1.103]"
  echo "smallbiz.test smtp:[198.18.1.104]"; echo "school.test smtp:[198.18.1.105]"; echo "shop.test smtp:[198.18.1.106]"
} > "$RUN/etc/transport"
printf 'pwcheck_method: auxprop\nauxprop_plugin: sasldb\nmech_list: PLAIN LOGIN\nsasldb_path: %s/etc/sasldb2\n' "$RUN" > "$RUN/etc/sasl/smtpd.conf"
echo 'alice-lab-pw' | saslpasswd2 -p -c -f "$RUN/etc/sasldb2" -u example.org alice
chown root:postfix "$RUN/etc/sasldb2"; chmod 640 "$RUN/etc/sasldb2"
in_ns postfix -c "$RUN/etc" check

# postfix_scenario NAME SETTLE: one Postfix log for traffic.py NAME; SETTLE
# seconds after the traffic for deliveries and a retry of the deferred mail.
postfix_scenario() {
  in_ns postfix -c "$RUN/etc" start
  sleep 1
  : > "$RUN/mail.log" # the log starts with the traffic, not with postfix-script's notes
  wait_port 25; wait_port 587
  in_ns python3 "$here/traffic.py" "$1" > "$out/postfix-$1-ledger.tsv"
  for _ in $(seq 1 60); do
    n=$(find "$RUN/spool/incoming" "$RUN/spool/active" -type f 2>/dev/null | wc -l)
    [ "$n" = 0 ] && break
    sleep 1
  done
  sleep "$2"
  postfix -c "$RUN/etc" stop
  sleep 1
  mv "$RUN/mail.log" "$out/postfix-$1.log"
  echo "postfix $1: $(wc -l < "$out/postfix-$1.log") lines in $out/postfix-$1.log, $(find "$RUN/spool/deferred" -type f | wc -l) messages left deferred"
  # the next scenario starts with an empty queue
  find "$RUN/spool/incoming" "$RUN/spool/active" "$RUN/spool/deferred" "$RUN/spool/defer" "$RUN/spool/bounce" -type f -delete
}
postfix_scenario compromised 3
postfix_scenario blocklisted 25

# ---- our Exim ------------------------------------------------------------------
exim_conf exim exim4.conf
# no queue runner: each message is delivered (or deferred) once, when it
# arrives, and the deferred bounces stay queued
in_ns_bg "$EXIM" -C "$RUN/exim/exim4.conf" -bd -oP "$RUN/exim/daemon.pid" 2> "$RUN/exim/daemon.stderr"
wait_port 10026
in_ns python3 "$here/traffic.py" backscatter > "$out/exim-backscatter-ledger.tsv"
sleep 5 # the last deliveries
kill "$(cat "$RUN/exim/daemon.pid")"
sleep 1
cp "$RUN/exim/mainlog" "$out/exim-backscatter.log"
echo "exim backscatter: $(wc -l < "$out/exim-backscatter.log") lines in $out/exim-backscatter.log, $(find "$RUN/exim/spool/input" -name '*-H' | wc -l) messages left queued"
in_ns postfix -c "$RUN/receivers/etc" stop
cp "$RUN/receivers/mail.log" "$out/receivers.log"
cp "$RUN/gmail/mainlog" "$out/gmail.log"
