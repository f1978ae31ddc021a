#!/bin/sh
# On purge (Debian) or erase (RPM, $1 = 0), remove the state and the user.
set -e
case "$1" in
  purge|0)
    rm -rf /var/lib/relaywatch
    if getent passwd relaywatch >/dev/null; then userdel relaywatch || true; fi
    if getent group relaywatch >/dev/null; then groupdel relaywatch 2>/dev/null || true; fi
    ;;
esac
if [ -d /run/systemd/system ]; then systemctl daemon-reload || true; fi
