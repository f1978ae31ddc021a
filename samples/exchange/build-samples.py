#!/usr/bin/env python3
"""Builds the Exchange samples: a message tracking log (MSGTRK) and an SMTP
Receive protocol log (RECV) of an Exchange 2019 server, first healthy, then
with an anonymous receive connector that relays for anyone (the open relay).

No real Exchange relay incident was available (see ../shared/corpus/SOURCES.md),
so these files are BUILT, line by line, from Microsoft's documented field
lists and event values; the line shapes follow the real lines in the shared
corpus. They are written with a UTF-8 BOM and CRLF line ends, as Exchange
writes them. Deterministic: python3 build-samples.py regenerates them.
"""
import random, datetime as dt

R = random.Random(7)
T0 = dt.datetime(2026, 11, 24, 7, 0, 0, tzinfo=dt.timezone.utc)
SERVER, SERVER_IP = "EX01", "10.0.0.10"
ACCEPTED = ["contoso.com"]
USERS = ["alice", "bob", "carol", "dave", "erin"]
PARTNERS = ["fabrikam.example", "adatum.example", "litware.example"]
VICTIMS = ["gmail.test", "yahoo.test", "outlook.test", "aol.test"]

FIELDS = ("date-time,client-ip,client-hostname,server-ip,server-hostname,source-context,connector-id,source,"
          "event-id,internal-message-id,message-id,network-message-id,recipient-address,recipient-status,total-bytes,"
          "recipient-count,related-recipient-address,reference,message-subject,sender-address,return-path,message-info,"
          "directionality,tenant-id,original-client-ip,original-server-ip,custom-data,transport-traffic-type,log-id,"
          "schema-version").split(",")

def ts(t):
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (t.microsecond // 1000)

def csv(v):
    v = str(v)
    if any(c in v for c in ',"\r\n'):
        return '"' + v.replace('"', '""') + '"'
    return v

def header(log_type, fields, t):
    return ["#Software: Microsoft Exchange Server", "#Version: 15.02.1118.007", "#Log-type: " + log_type,
            "#Date: " + ts(t), "#Fields: " + ",".join(fields)]

msgtrk, recv = [], []
t = T0
iid = 3500000000000

def trk(**kw):
    row = {f: "" for f in FIELDS}
    row.update({k.replace("_", "-"): v for k, v in kw.items()})
    row["schema-version"] = "15.02.1118.007"
    row["log-id"] = "%08x-%04x-%04x-%04x-%012x" % (R.getrandbits(32), R.getrandbits(16), R.getrandbits(16), R.getrandbits(16), R.getrandbits(48))
    msgtrk.append(",".join(csv(row[f]) for f in FIELDS))

sid = 0x08DD0C1A00000000
def session(t, ip, port, connector, rows):
    """rows: list of (event, data, context)"""
    global sid
    sid += R.randint(1, 50)
    s = "%016X" % sid
    for i, (ev, data, ctx) in enumerate(rows):
        recv.append(",".join(csv(x) for x in [ts(t + dt.timedelta(milliseconds=40 * i)), connector, s, i, SERVER_IP + ":25", "%s:%d" % (ip, port), ev, data, ctx]))

def smtp_rows(helo, sender, rcpts, perms, auth=None, relay_ok=False):
    rows = [("+", "", ""), ("*", perms, "Set Session Permissions"),
            (">", "220 ex01.contoso.com Microsoft ESMTP MAIL Service ready at Tue, 24 Nov 2026 07:00:00 +0000", ""),
            ("<", "EHLO " + helo, ""), (">", "250  ex01.contoso.com Hello [" + helo + "] SIZE 37748736 PIPELINING DSN ENHANCEDSTATUSCODES STARTTLS AUTH NTLM LOGIN 8BITMIME BINARYMIME CHUNKING", "")]
    if auth:
        rows += [("<", "AUTH LOGIN", ""), (">", "334 <authentication response>", ""), (">", "334 <authentication response>", "")]
        if auth == "fail":
            rows += [("*", "", "Inbound AUTH LOGIN failed because of LogonDenied"), ("*", "", "User Name: admin@contoso.com"),
                     (">", "535 5.7.3 Authentication unsuccessful", ""), ("-", "", "Remote(SocketError)")]
            return rows
        rows += [("*", "CONTOSO\\" + auth, "authenticated"), (">", "235 2.7.0 Authentication successful", "")]
    rows += [("<", "MAIL FROM:<%s> SIZE=%d" % (sender, R.randint(2000, 60000)), ""), (">", "250 2.1.0 Sender OK", "")]
    for r in rcpts:
        rows.append(("<", "RCPT TO:<%s>" % r, ""))
        dom = r.split("@")[1]
        if dom in ACCEPTED or auth or relay_ok:
            rows.append((">", "250 2.1.5 Recipient OK", ""))
        else:
            rows.append((">", "550 5.7.54 SMTP; Unable to relay recipient in non-accepted domain", ""))
    rows += [("<", "DATA", ""), (">", "354 Start sending mail data", ""), (">", "250 2.6.0 <x@y> [InternalId=1] Queued mail for delivery", ""),
             ("<", "QUIT", ""), (">", "221 2.0.0 Service closing transmission channel", ""), ("-", "", "Local")]
    return rows

ANON = "SMTPSubmit SMTPAcceptAnySender SMTPAcceptAuthoritativeDomainSender AcceptRoutingHeaders"
OPEN = "SMTPSubmit SMTPAcceptAnySender SMTPAcceptAuthoritativeDomainSender SMTPAcceptAnyRecipient AcceptRoutingHeaders"
AUTHP = "SMTPSubmit SMTPAcceptAnySender SMTPAcceptAuthoritativeDomainSender SMTPAcceptAnyRecipient BypassAntiSpam AcceptRoutingHeaders"

def inbound(t):
    global iid
    iid += R.randint(1, 9)
    ip = "198.51.100.%d" % R.randint(10, 60)
    partner = R.choice(PARTNERS)
    sender = "%s@%s" % (R.choice(["news", "orders", "info"]), partner)
    rcpt = "%s@contoso.com" % R.choice(USERS)
    mid = "<%d.%d@%s>" % (int(t.timestamp()), R.randint(1, 10**6), partner)
    size = R.randint(3000, 90000)
    trk(date_time=ts(t), client_ip=ip, client_hostname="mail." + partner, server_ip=SERVER_IP, server_hostname=SERVER,
        source_context="08DD0C1A%08X;%s;0" % (R.getrandbits(32), ts(t)), connector_id=SERVER + "\\Default Frontend " + SERVER,
        source="SMTP", event_id="RECEIVE", internal_message_id=iid, message_id=mid, network_message_id="%08x-0000-0000-0000-000000000000" % iid,
        recipient_address=rcpt, total_bytes=size, recipient_count=1, message_subject="Order confirmation", sender_address=sender,
        return_path=sender, directionality="Incoming", custom_data="S:FromEntity=Internet;S:ToEntity=Hosted;S:MsgRecipCount=1",
        transport_traffic_type="Email")
    trk(date_time=ts(t + dt.timedelta(seconds=1)), server_hostname=SERVER, source_context="MDB:5b6b0c22-7c4e-4bc3-a9a1-6c2b7d1d8c1f, Mailbox:00000000-0000-0000-0000-000000000001, Event:1, MessageClass:IPM.Note, CreationTime:" + ts(t),
        connector_id="", source="STOREDRIVER", event_id="DELIVER", internal_message_id=iid, message_id=mid, recipient_address=rcpt,
        total_bytes=size, recipient_count=1, message_subject="Order confirmation", sender_address=sender, return_path=sender,
        directionality="Incoming", transport_traffic_type="Email")
    session(t - dt.timedelta(seconds=2), ip, R.randint(30000, 60000), SERVER + "\\Default Frontend " + SERVER, smtp_rows("mail." + partner, sender, [rcpt], ANON))

def outbound(t):
    global iid
    iid += R.randint(1, 9)
    user = R.choice(USERS)
    sender = user + "@contoso.com"
    rcpt = "%s@%s" % (R.choice(["sales", "support", "jane"]), R.choice(PARTNERS))
    mid = "<%08x@EX01.contoso.com>" % R.getrandbits(32)
    trk(date_time=ts(t), client_ip="fe80::1%3", client_hostname=SERVER, source_context="MDB:5b6b0c22-7c4e-4bc3-a9a1-6c2b7d1d8c1f, Mailbox:00000000-0000-0000-0000-000000000002, Event:2, MessageClass:IPM.Note, CreationTime:" + ts(t) + ", ClientType:OWA",
        source="STOREDRIVER", event_id="RECEIVE", internal_message_id=iid, message_id=mid, recipient_address=rcpt, total_bytes=R.randint(2000, 40000),
        recipient_count=1, message_subject="Re: quote", sender_address=sender, return_path=sender, directionality="Originating", transport_traffic_type="Email")
    trk(date_time=ts(t + dt.timedelta(seconds=2)), client_ip=SERVER_IP, client_hostname=SERVER + ".contoso.com", server_ip="203.0.113.%d" % R.randint(100, 200), server_hostname="mx." + rcpt.split("@")[1],
        source_context=";250 2.6.0 <%s> Queued mail for delivery;ClientSubmitTime:%s" % (mid.strip("<>"), ts(t)), connector_id="Internet Send Connector", source="SMTP", event_id="SEND",
        internal_message_id=iid, message_id=mid, recipient_address=rcpt, recipient_status="250 2.1.5 Recipient OK", total_bytes=R.randint(2000, 40000), recipient_count=1,
        message_subject="Re: quote", sender_address=sender, return_path=sender, directionality="Originating", custom_data="S:FromEntity=Hosted;S:ToEntity=Internet", transport_traffic_type="Email")

def probe(t):
    ip = "203.0.113.66"
    session(t, ip, R.randint(30000, 60000), SERVER + "\\Default Frontend " + SERVER, smtp_rows("bulk-sender.example", "probe@bulk.example", ["test1@" + R.choice(VICTIMS)], ANON))

def guess(t):
    session(t, "192.0.2.99", R.randint(30000, 60000), SERVER + "\\Client Frontend " + SERVER, smtp_rows("guess", "", [], AUTHP, auth="fail"))

def submission(t):
    user = R.choice(USERS)
    session(t, "198.18.0.%d" % R.randint(2, 50), R.randint(30000, 60000), SERVER + "\\Client Frontend " + SERVER,
            smtp_rows("laptop", user + "@contoso.com", ["jane@" + R.choice(PARTNERS)], AUTHP, auth=user))

def relay(t, ip, helo, sender_dom, n):
    global iid
    for k in range(n):
        iid += R.randint(1, 9)
        sender = "offers%d@%s" % (R.randint(1, 999), sender_dom)
        rcpts = ["%s%d@%s" % (R.choice(["mary", "john", "li", "sam"]), R.randint(1, 9999), R.choice(VICTIMS)) for _ in range(R.randint(3, 5))]
        mid = "<%d.%d@%s>" % (int(t.timestamp()), R.randint(1, 10**6), sender_dom)
        trk(date_time=ts(t), client_ip=ip, client_hostname=helo, server_ip=SERVER_IP, server_hostname=SERVER,
            source_context="08DD0C1A%08X;%s;0" % (R.getrandbits(32), ts(t)), connector_id=SERVER + "\\Anonymous Relay " + SERVER,
            source="SMTP", event_id="RECEIVE", internal_message_id=iid, message_id=mid, network_message_id="%08x-0000-0000-0000-000000000000" % iid,
            recipient_address=";".join(rcpts), total_bytes=R.randint(1500, 4000), recipient_count=len(rcpts), message_subject="You have WON, claim your prize",
            sender_address=sender, return_path=sender, directionality="Incoming", custom_data="S:FromEntity=Internet;S:ToEntity=Internet;S:MsgRecipCount=%d" % len(rcpts),
            transport_traffic_type="Email")
        trk(date_time=ts(t + dt.timedelta(seconds=1)), client_ip=SERVER_IP, client_hostname=SERVER + ".contoso.com", server_ip="192.0.2.9", server_hostname="mx.victim.test",
            source_context=";250 2.0.0 Ok: queued;ClientSubmitTime:" + ts(t), connector_id="Internet Send Connector", source="SMTP", event_id="SEND",
            internal_message_id=iid, message_id=mid, recipient_address=";".join(rcpts), recipient_status=";".join(["250 2.1.5 Ok"] * len(rcpts)),
            total_bytes=R.randint(1500, 4000), recipient_count=len(rcpts), message_subject="You have WON, claim your prize", sender_address=sender, return_path=sender,
            directionality="Incoming", custom_data="S:FromEntity=Internet;S:ToEntity=Internet", transport_traffic_type="Email")
        session(t - dt.timedelta(seconds=1), ip, R.randint(30000, 60000), SERVER + "\\Anonymous Relay " + SERVER, smtp_rows(helo, sender, rcpts, OPEN, relay_ok=True))
        t += dt.timedelta(milliseconds=R.randint(200, 900))
    return t

def build(incident):
    global t
    msgtrk.clear(); recv.clear()
    t = T0
    for i in range(90):
        r = R.random()
        (inbound if r < 0.55 else outbound if r < 0.8 else submission if r < 0.9 else probe if r < 0.95 else guess)(t)
        t += dt.timedelta(seconds=R.randint(5, 40))
    if incident:
        t = relay(t, "203.0.113.66", "bulk-sender.example", "bulk.example", 60)
        t = relay(t, "203.0.113.77", "[203.0.113.77]", "promo-mailer.example", 50)
        for i in range(20):
            (inbound if R.random() < 0.6 else outbound)(t)
            t += dt.timedelta(seconds=R.randint(5, 40))

for name, incident in [("normal", False), ("incident", True)]:
    build(incident)
    with open("MSGTRK2026112407-%s.LOG" % name, "w", encoding="utf-8-sig", newline="\r\n") as f:
        f.write("\n".join(header("Message Tracking Log", FIELDS, T0) + msgtrk) + "\n")
    with open("RECV2026112407-%s.LOG" % name, "w", encoding="utf-8-sig", newline="\r\n") as f:
        f.write("\n".join(header("SMTP Receive Protocol Log", "date-time,connector-id,session-id,sequence-number,local-endpoint,remote-endpoint,event,data,context".split(","), T0) + sorted(recv)) + "\n")
