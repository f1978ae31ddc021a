#!/usr/bin/env python3
"""The traffic of the real-samples lab, sent with smtplib from chosen source
addresses (all on the namespace's lo) to the lab's real MTAs.

  traffic.py compromised   Postfix: alice's stolen password
  traffic.py blocklisted   Postfix: receivers refusing our mail for blocklists
  traffic.py backscatter   Exim: mail to unknown users from forged senders

compromised and backscatter run over three wall-clock minutes
(aligned to the minute: the samples are analyzed with one-minute windows, a
lab minute standing for an hour). Prints one ledger line per SMTP session:
scenario minute, client, login, sender, recipients, what it is, result."""
import smtplib
import sys
import time

BODY = "Subject: lab {n}\r\nFrom: {frm}\r\nTo: {to}\r\n\r\nreal-samples lab message {n}\r\n"
ALICE = ("alice@example.org", "alice-lab-pw")


def send(client, frm, rcpts, port=None, user=None, what=""):
    s = smtplib.SMTP("127.0.0.1", port or send.port, source_address=(client, 0), timeout=30)
    result = ""
    try:
        s.ehlo("client%s.sender.test" % client.rsplit(".", 1)[-1])
        if user:
            try:
                s.login(*user)
            except smtplib.SMTPAuthenticationError as e:
                result = "auth failed %d" % e.smtp_code
        if not result:
            try:
                refused = s.sendmail(frm, rcpts, BODY.format(n=send.n, frm=frm or "MAILER-DAEMON", to=", ".join(rcpts)))
                result = "refused=%d" % len(refused)
            except smtplib.SMTPRecipientsRefused as e:
                result = "refused=%d" % len(e.recipients)
            except smtplib.SMTPDataError as e:
                result = "data refused %d" % e.smtp_code
    finally:
        send.n += 1
        try:
            s.quit()
        except smtplib.SMTPServerDisconnected:
            pass
    print(f"{send.minute}\t{client}\t{user[0] if user else '-'}\t{frm or '<>'}\t{','.join(rcpts)}\t{what}\t{result}", flush=True)


send.n = 1
send.minute = -1  # next_minute starts minute 0
send.port = 25  # Postfix; Exim listens on 10026


def next_minute():
    """Sleeps until two seconds into the next wall-clock minute."""
    now = time.time()
    time.sleep(60 - now % 60 + 2)
    send.minute += 1


def fail_login(client, user, password, tries):
    """One session that tries a wrong password tries times, as a guessing bot."""
    s = smtplib.SMTP("127.0.0.1", 587, source_address=(client, 0), timeout=30)
    try:
        s.ehlo("client%s.sender.test" % client.rsplit(".", 1)[-1])
        for _ in range(tries):
            try:
                s.login(user, password)
            except smtplib.SMTPAuthenticationError as e:
                print(f"{send.minute}\t{client}\t{user}\t-\t-\tpassword guess\tauth failed {e.smtp_code}", flush=True)
    finally:
        s.quit()


def alice_day(k):
    """alice's own mail from her home address: k messages to her contacts."""
    for i in range(k):
        send("192.0.2.10", "alice@example.org", [f"friend{i}@example.net", "orders@partner.example"], port=587,
             user=ALICE, what="alice, legitimate")


def compromised():
    next_minute()
    # minute 0: a normal minute
    alice_day(3)
    send("127.0.0.20", "news@partner.example", ["alice@example.org", "bob@example.org"], what="inbound")
    next_minute()
    # minute 1: normal mail, then a burst of password guesses from several addresses
    alice_day(3)
    for client, user, pw in [("203.0.113.50", "alice@example.org", "alice2026"), ("203.0.113.51", "alice@example.org", "Password1"),
                             ("127.0.0.150", "alice@example.org", "example123"), ("127.0.0.151", "alice@example.org", "qwerty"),
                             ("203.0.113.52", "admin@example.org", "admin")]:
        fail_login(client, user, pw, 2)
    next_minute()
    # minute 2: the stolen password is used from many addresses for a spam run
    clients = ["198.51.100.23", "203.0.113.77", "198.18.4.9", "198.19.12.5", "127.0.0.160", "127.0.0.161",
               "127.0.0.162", "198.51.100.24", "127.0.0.163", "203.0.113.78", "127.0.0.164"]
    for k, client in enumerate(clients):
        rcpts = [f"user{k}@corp{(k * 10 + j) % 40}.example" for j in range(10)]
        send(client, "alice@example.org", rcpts, port=587, user=ALICE, what="STOLEN: spam run")
        if k == 5:
            alice_day(1)


def blocklisted():
    good = ["example.net", "friends.test", "partner.example"]
    listed = ["smallbiz.test", "outlook.test", "school.test", "gmail.test", "hotmail.test", "yahoo.test", "shop.test"]
    # mail gets through first, then receivers start refusing
    for i in range(6):
        send("192.0.2.10", "alice@example.org", [f"friend{i}@{good[i % 3]}"], port=587, user=ALICE, what="delivered")
        send("127.0.0.1", "noreply@example.org", [f"customer{i}@{good[(i + 1) % 3]}"], what="application, delivered")
    for i, dom in enumerate(listed):
        send("192.0.2.10", "alice@example.org", [f"contact{i}@{dom}"], port=587, user=ALICE, what="refused for a blocklist")
        send("127.0.0.1", "noreply@example.org", [f"customer{i}@{good[i % 3]}"], what="application, delivered")
        send("127.0.0.1", "noreply@example.org", [f"invoice{i}@{dom}", f"invoice{i}@{good[(i + 2) % 3]}"], what="one refused, one delivered")


def backscatter():
    send.port = 10026
    next_minute()
    # minutes 0 and 1: normal minutes, each with one bounce for a mistyped
    # address (minute 0 is the stream's first, partial window: no baseline)
    for m in range(2):
        for i in range(3):
            send("127.0.0.40", f"news{i}@partner.example", ["bob@example.org"], what="inbound")
        send("127.0.0.1", "alice@example.org", [f"friend{m}@example.net"], what="outbound from our network")
        send("127.0.0.41", f"ann{m}@partner.example", ["bobb@example.org"], what="unknown user: one bounce, delivered")
        next_minute()
    # minute 2: spam to made-up users from forged senders: every one bounces
    users = ["info", "sales", "admin", "office", "jobs", "hr", "billing", "contact", "marketing", "support"]
    for i in range(52):
        frm = f"{users[i % 10]}{i}@host{i}.dead.test" if i % 3 else f"newsletter{i}@mail{i}.greylist.test"
        send(f"127.0.0.{80 + i % 6}", frm, [f"{users[(i * 7) % 10]}{i % 17}@example.org"], what="BACKSCATTER: unknown user, forged sender")
        if i % 20 == 0:
            send("127.0.0.40", f"news{i}@partner.example", ["bob@example.org"], what="inbound")

{"compromised": compromised, "blocklisted": blocklisted, "backscatter": backscatter}[sys.argv[1]]()
