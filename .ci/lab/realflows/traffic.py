#!/usr/bin/env python3
"""The mail flows of the real-flows lab, sent with smtplib from different
loopback source addresses (one per client) to Postfix on 127.0.0.1:
inbound mail to a mailbox, mail to a virtual alias and to a local(8) alias
that forward to outside mailboxes (a null-sender bounce among them), an
authenticated user sending out, an open-relay abuser (127.0.0.66, let
through by a too-wide client access table) and a refused relay probe.
Everything goes through the content filter. Prints one ledger line per
message: client, sender, recipients, expected verdict."""
import smtplib

BODY = "Subject: lab {n}\r\nFrom: {frm}\r\nTo: {to}\r\n\r\nreal-flows lab message {n}\r\n"


def send(client, frm, rcpts, port=25, user=None, expect=""):
    s = smtplib.SMTP("127.0.0.1", port, source_address=(client, 0), timeout=30)
    try:
        s.ehlo("client%s.sender.test" % client.rsplit(".", 1)[-1])
        if user:
            s.login(*user)
        refused = {}
        try:
            refused = s.sendmail(frm, rcpts, BODY.format(n=send.n, frm=frm or "MAILER-DAEMON", to=", ".join(rcpts)))
        except smtplib.SMTPRecipientsRefused as e:
            refused = e.recipients
        print(f"{client}\t{frm or '<>'}\t{','.join(rcpts)}\t{expect}\trefused={len(refused)}", flush=True)
    finally:
        send.n += 1
        s.quit()


send.n = 1

for i in range(4):
    send("127.0.0.20", f"news{i}@partner.test", ["bob@example.org"], expect="inbound")
for i in range(4):
    send("127.0.0.21", f"friend{i}@partner.test", ["fwd@example.org"], expect="forwarded (virtual alias)")
for i in range(3):
    send("127.0.0.22", f"list{i}@partner.test", ["forwarder@mail.example.org"], expect="forwarded (local alias)")
send("127.0.0.23", "", ["fwd@example.org"], expect="forwarded null-sender bounce")
for i in range(3):
    send("127.0.0.30", "alice@example.org", [f"client{i}@customer.test", "partner@partner.test"], port=587,
         user=("alice@example.org", "alice-lab-pw"), expect="authenticated, outbound")
for i in range(8):
    send("127.0.0.66", f"promo{i}@bulk.example", [f"user{i}@gmail.test", f"user{i}@yahoo.test", f"user{i}@hotmail.test"],
         expect="RELAYED for a stranger")
send("127.0.0.67", "probe@bulk.example", ["test@gmail.test"], expect="relay denied")
