#!/bin/sh
# Stop the sidecar before its binary goes away.
set -e
if [ -d /run/systemd/system ]; then
  systemctl disable --now relaywatch.service >/dev/null 2>&1 || true
fi
