#!/usr/bin/env bash
# The real-flows lab: real Postfix (the Debian package, started with its own
# configuration directory: postfix -c DIR; /etc/postfix is never written)
# behind a pass-through content filter (filter.py on 10024, re-injection
# smtpd on 10025), with a virtual alias and a local(8) alias that forward to
# outside mailboxes, an authenticated user and an open-relay abuser; then
# real Exim (the same extracted Debian package as the main lab, run with -C
# and -bs, no daemon) with a redirect router. Everything runs in its own
# loopback-only network namespace; the "Internet" is smtp-sink on
# 127.0.0.1:2525 there.
#
# Usage (as root; serialize with the other MTA labs):
#   flock /tmp/relaywatch-mta.lock .ci/lab/realflows/run.sh OUTDIR
# Writes OUTDIR/postfix-realflows.log, OUTDIR/exim-realflows.log and the
# ledgers of what was sent.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$(mkdir -p "${1:-/tmp/relaywatch-realflows/out}" && cd "${1:-/tmp/relaywatch-realflows/out}" && pwd)
RUN=${RF_RUN:-/tmp/relaywatch-realflows}
NS=${RF_NS:-rwrealflows}
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
export DEBIAN_FRONTEND=noninteractive
in_ns() { ip netns exec "$NS" "$@"; }
# lab FUNCTION ARGS... runs a function of ../common.sh (host_change, which
# refuses to change a host whose own MTA is in use unless CI=true or
# RELAYWATCH_E2E_DISPOSABLE=1; postfix_packages, lo_netns, unpack_exim).
lab() { bash -c '. "$1"; shift; "$@"' _ "$here/../common.sh" "$@"; }

pids=()
cleanup() {
  set +e
  [ -f "$RUN/etc/main.cf" ] && postfix -c "$RUN/etc" stop >/dev/null 2>&1
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  sleep 1
  ip netns pids "$NS" 2>/dev/null | xargs -r kill 2>/dev/null
  sleep 0.5
  ip netns del "$NS" 2>/dev/null
}
trap cleanup EXIT

# ---- tools (Debian packages) -------------------------------------------------
lab postfix_packages

# ---- a network namespace with nothing but lo --------------------------------
lab lo_netns "$NS"

rm -rf "$RUN"; mkdir -p "$RUN/etc/sasl" "$RUN/data" "$RUN/spool" "$RUN/vmail" "$out"
chown nobody:nogroup "$RUN/vmail"; chown postfix "$RUN/data"

in_ns smtp-sink -u nobody -c 127.0.0.1:2525 100 >/dev/null 2>&1 &
pids+=($!)
wait_port() { for _ in $(seq 1 50); do in_ns python3 -c "import socket; socket.create_connection(('127.0.0.1', $1), 1)" 2>/dev/null && return 0; sleep 0.1; done; echo "FATAL: nothing listens on 127.0.0.1:$1" >&2; return 1; }
wait_port 2525

# ---- Postfix -------------------------------------------------------------------
sed "s#RUN#$RUN#g" "$here/main.cf" > "$RUN/etc/main.cf"
cp "$here/master.cf" "$RUN/etc/master.cf"
printf 'bob@example.org bob/\n' > "$RUN/etc/vmailbox"
printf 'fwd@example.org carol@gmail.test\n' > "$RUN/etc/virtual"
printf 'forwarder dave@yahoo.test\n' > "$RUN/etc/aliases" # texthash: "key value"
printf '127.0.0.66 OK\n' > "$RUN/etc/open-relay.cidr"
printf 'pwcheck_method: auxprop\nauxprop_plugin: sasldb\nmech_list: PLAIN LOGIN\nsasldb_path: %s/etc/sasldb2\n' "$RUN" > "$RUN/etc/sasl/smtpd.conf"
echo 'alice-lab-pw' | saslpasswd2 -p -c -f "$RUN/etc/sasldb2" -u example.org alice
chown root:postfix "$RUN/etc/sasldb2"; chmod 640 "$RUN/etc/sasldb2"
postfix -c "$RUN/etc" check
in_ns postfix -c "$RUN/etc" start
sleep 1
: > "$RUN/mail.log" # the log starts with the traffic, not with postfix-script's permission notes
in_ns python3 "$here/filter.py" "$RUN/mail.log" &
pids+=($!)
wait_port 10024; wait_port 25; wait_port 10025

in_ns python3 "$here/traffic.py" > "$out/postfix-realflows-ledger.tsv"
# wait for the queue to drain
for i in $(seq 1 60); do
  n=$(find "$RUN/spool/incoming" "$RUN/spool/active" "$RUN/spool/deferred" -type f 2>/dev/null | wc -l)
  [ "$n" = 0 ] && break
  sleep 1
done
sleep 2
postfix -c "$RUN/etc" stop
sleep 1
left=$(find "$RUN/spool/incoming" "$RUN/spool/active" "$RUN/spool/deferred" -type f 2>/dev/null | wc -l)
[ "$left" = 0 ] || { echo "FATAL: $left messages still queued" >&2; exit 1; }
cp "$RUN/mail.log" "$out/postfix-realflows.log"
echo "postfix: $(wc -l < "$out/postfix-realflows.log") lines in $out/postfix-realflows.log"

# ---- Exim (the Debian package, extracted; -C with our configuration) -----------
EXIM=${RF_EXIM:-}
if [ -z "$EXIM" ]; then
  # under $RUN: nothing is left on the host
  lab unpack_exim "$RUN/exim-root" "${RF_DEBS:-$RUN/debs}"
  EXIM="$RUN/exim-root/usr/sbin/exim4"
fi
mkdir -p "$RUN/exim/spool" "$RUN/exim/vmail"
printf 'fwd: erin@gmail.test\n' > "$RUN/exim/forwards"
sed -e "s#RUN#$RUN#g" -e "s#EXIM#$EXIM#g" "$here/exim4.conf" > "$RUN/exim/exim4.conf"
chown -R Debian-exim:Debian-exim "$RUN/exim"; chmod 755 "$RUN" "$RUN/exim"
chown root:root "$RUN/exim/exim4.conf"; chmod 644 "$RUN/exim/exim4.conf" # Exim insists
"$EXIM" -C "$RUN/exim/exim4.conf" -bV >/dev/null
# Not in Exim's TRUSTED_CONFIG_LIST: the daemon runs as Debian-exim, hence the
# unprivileged port; nothing is written to /etc/exim4.
in_ns "$EXIM" -C "$RUN/exim/exim4.conf" -bd -q5s -oP "$RUN/exim/daemon.pid" 2> "$RUN/exim/daemon.stderr" &
wait_port 10026
in_ns python3 "$here/exim-traffic.py" > "$out/exim-realflows-ledger.tsv"
for i in $(seq 1 60); do
  n=$(find "$RUN/exim/spool/input" -type f 2>/dev/null | wc -l)
  [ "$n" = 0 ] && break
  sleep 1
done
sleep 1
[ -f "$RUN/exim/daemon.pid" ] && kill "$(cat "$RUN/exim/daemon.pid")" 2>/dev/null || true
left=$(find "$RUN/exim/spool/input" -type f 2>/dev/null | wc -l)
[ "$left" = 0 ] || { echo "FATAL: $left Exim spool files left" >&2; exit 1; }
cp "$RUN/exim/mainlog" "$out/exim-realflows.log"
echo "exim: $(wc -l < "$out/exim-realflows.log") lines in $out/exim-realflows.log"
