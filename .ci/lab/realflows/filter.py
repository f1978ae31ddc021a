#!/usr/bin/env python3
"""A pass-through content filter, as amavisd-new is set up behind Postfix
(FILTER_README's "advanced" content filter): it accepts mail from Postfix on
LISTEN (127.0.0.1:10024), re-injects it into Postfix's after-filter smtpd on
INJECT (127.0.0.1:10025), and answers Postfix with the re-injection's reply,
as amavis does ("250 2.0.0 from MTA(smtp:[127.0.0.1]:10025): 250 2.0.0 Ok:
queued as NEWID").

To make Postfix log the hop and the copy in every order real logs show, it
alternates: every second message is re-injected with XFORWARD (Postfix then
logs orig_queue_id= on the copy's client= line), and two messages in three
are answered only after a pause, so that the copy is delivered before the
hop's status=sent line (the order of most hops on a real amavis gateway).
For every fourth message it writes amavis' own "Passed CLEAN ... queued_as:"
line to LOG (the Postfix log), as amavisd-new logs through syslog. Stdlib only; loopback only.
"""
import smtplib
import socketserver
import sys
import threading
import time

LISTEN = ("127.0.0.1", 10024)
INJECT = ("127.0.0.1", 10025)
count = 0
lock = threading.Lock()
log_path = sys.argv[1] if len(sys.argv) > 1 else None


def amavis_log(line):
    if not log_path:
        return
    stamp = time.strftime("%b %e %H:%M:%S")
    with lock, open(log_path, "a") as f:
        f.write(f"{stamp} mail amavis[4242]: {line}\n")


class Handler(socketserver.StreamRequestHandler):
    def reply(self, text):
        self.wfile.write((text + "\r\n").encode())
        self.wfile.flush()

    def handle(self):
        global count
        self.reply("220 127.0.0.1 ESMTP lab filter")
        xfwd, sender, rcpts = {}, None, []
        while True:
            raw = self.rfile.readline()
            if not raw:
                return
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            cmd = line.upper()
            if cmd.startswith("EHLO") or cmd.startswith("HELO"):
                self.reply("250-127.0.0.1\r\n250-XFORWARD NAME ADDR PROTO HELO IDENT SOURCE PORT\r\n250 8BITMIME")
            elif cmd.startswith("XFORWARD"):
                for kv in line.split()[1:]:
                    k, _, v = kv.partition("=")
                    xfwd[k.upper()] = v
                self.reply("250 2.0.0 Ok")
            elif cmd.startswith("MAIL FROM:"):
                sender = line[10:].strip().split()[0].strip("<>")
                self.reply("250 2.1.0 Ok")
            elif cmd.startswith("RCPT TO:"):
                rcpts.append(line[8:].strip().split()[0].strip("<>"))
                self.reply("250 2.1.5 Ok")
            elif cmd == "DATA":
                self.reply("354 End data with <CR><LF>.<CR><LF>")
                data = []
                while True:
                    l = self.rfile.readline()
                    if l in (b".\r\n", b".\n", b""):
                        break
                    if l.startswith(b".."):
                        l = l[1:]
                    data.append(l)
                with lock:
                    count += 1
                    n = count
                code, text = self.reinject(n, xfwd, sender, rcpts, b"".join(data))
                if code == 250 and n % 3 != 0:
                    time.sleep(1.5)  # the copy is delivered before the hop is logged
                self.reply(f"{code} 2.0.0 from MTA(smtp:[127.0.0.1]:10025): {code} {text}")
                sender, rcpts = None, []
            elif cmd == "RSET":
                xfwd, sender, rcpts = {}, None, []
                self.reply("250 2.0.0 Ok")
            elif cmd == "QUIT":
                self.reply("221 2.0.0 Bye")
                return
            else:
                self.reply("250 2.0.0 Ok")

    def reinject(self, n, xfwd, sender, rcpts, body):
        s = smtplib.SMTP(*INJECT, timeout=30)
        try:
            s.ehlo("localhost")
            if n % 2 == 0 and xfwd:
                attrs = " ".join(f"{k}={v}" for k, v in xfwd.items() if k in ("NAME", "ADDR", "PROTO", "HELO"))
                s.docmd("XFORWARD", attrs)
                if "IDENT" in xfwd:
                    s.docmd("XFORWARD", "IDENT=" + xfwd["IDENT"])
            s.mail(sender or "")
            for r in rcpts:
                s.rcpt(r)
            code, text = s.data(body)
            text = text.decode()
            queued = text.rsplit("queued as ", 1)[-1] if "queued as " in text else ""
            if n % 4 == 1:  # amavis' own line, for some messages only
                    amavis_log(f"({4242:05d}-{n:02d}) Passed CLEAN {{RelayedOutbound}}, [{xfwd.get('ADDR', '127.0.0.1')}]:10000 <{sender or ''}> -> "
                           + ",".join(f"<{r}>" for r in rcpts)
                           + f", Queue-ID: {xfwd.get('IDENT', '')}, Message-ID: <lab{n}@filter>, mail_id: lab{n}, Hits: -, size: {len(body)}, queued_as: {queued}, 12 ms")
            return code, text
        finally:
            s.quit()


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


if __name__ == "__main__":
    Server(LISTEN, Handler).serve_forever()
