#!/usr/bin/env python3
"""The Exim flows of the real-flows lab (smtplib, one loopback source
address per client, to the Exim daemon on 127.0.0.1:10026): inbound mail to
a mailbox, mail to an address the redirect router forwards outside, the
open-relay abuser (127.0.0.66) and a refused relay probe."""
import smtplib


def send(client, frm, rcpts, expect):
    s = smtplib.SMTP("127.0.0.1", 10026, source_address=(client, 0), timeout=30)
    try:
        s.ehlo("client%s.sender.test" % client.rsplit(".", 1)[-1])
        try:
            refused = s.sendmail(frm, rcpts, "Subject: lab\r\n\r\nreal-flows lab\r\n")
        except smtplib.SMTPRecipientsRefused as e:
            refused = e.recipients
        print(f"{client}\t{frm or '<>'}\t{','.join(rcpts)}\t{expect}\trefused={len(refused)}", flush=True)
    finally:
        s.quit()


for i in range(3):
    send("127.0.0.40", f"news{i}@partner.test", ["bob@example.org"], "inbound")
for i in range(4):
    send("127.0.0.41", f"friend{i}@partner.test", ["fwd@example.org"], "forwarded (redirect router)")
send("127.0.0.42", "", ["fwd@example.org"], "forwarded null-sender bounce")
for i in range(6):
    send("127.0.0.66", f"promo{i}@bulk.example", [f"user{i}@gmail.test", f"user{i}@yahoo.test"], "RELAYED for a stranger")
send("127.0.0.67", "probe@bulk.example", ["test@gmail.test"], "relay denied")
