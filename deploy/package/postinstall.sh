#!/bin/sh
# relaywatch package: a system user that reads the mail logs through the adm
# group, and its state directory. The service is not started: edit
# /etc/relaywatch/relaywatch.yml, check it, then enable it.
set -e
if ! getent passwd relaywatch >/dev/null; then
  useradd --system --user-group --home-dir /var/lib/relaywatch --no-create-home \
    --shell /usr/sbin/nologin --comment "relaywatch mail relay alarm" relaywatch
fi
if getent group adm >/dev/null; then usermod -a -G adm relaywatch; fi
install -d -o relaywatch -g relaywatch -m 0750 /var/lib/relaywatch
if [ -d /run/systemd/system ]; then systemctl daemon-reload || true; fi
echo "relaywatch: edit /etc/relaywatch/relaywatch.yml, check it with 'relaywatch check-config /etc/relaywatch/relaywatch.yml', then 'systemctl enable --now relaywatch'"
