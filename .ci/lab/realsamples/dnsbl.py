#!/usr/bin/env python3
"""The lab's DNS: a tiny authoritative responder on 127.0.0.1:53 inside the
lab's network namespace that plays the blocklists. Every query for
REVERSED-IP.ZONE, for the zones given on the command line, is "listed":
A 127.0.0.2, and TXT the list's usual reason text; every other name is
NXDOMAIN. The "Internet" Postfix (receivers.cf) asks it through
reject_rbl_client, so its refusals are Postfix's own reject_rbl_client
replies.

Usage: dnsbl.py ZONE[=TXT-TEMPLATE] ...   ({ip} in the template is the
listed address)"""
import socket
import struct
import sys

zones = {}
for arg in sys.argv[1:]:
    zone, _, txt = arg.partition("=")
    zones[zone.lower().rstrip(".")] = txt


def parse_name(data, off):
    labels = []
    while data[off]:
        n = data[off]
        labels.append(data[off + 1:off + 1 + n].decode("ascii", "replace"))
        off += 1 + n
    return ".".join(labels), off + 1


def answer(query):
    qid, flags, qd, _, _, _ = struct.unpack("!HHHHHH", query[:12])
    if qd != 1:
        return None
    name, off = parse_name(query, 12)
    qtype, qclass = struct.unpack("!HH", query[off:off + 4])
    question = query[12:off + 4]
    rdata, rtype = None, qtype
    lname = name.lower()
    for zone, txt in zones.items():
        if lname.endswith("." + zone):
            octets = lname[:-len(zone) - 1].split(".")
            if len(octets) == 4 and all(o.isdigit() for o in octets):
                ip = ".".join(reversed(octets))
                if qtype == 1:
                    rdata = socket.inet_aton("127.0.0.2")
                elif qtype == 16 and txt:
                    t = txt.format(ip=ip).encode()
                    rdata = bytes([len(t)]) + t
            break
    # QR, AA, RD copied, RA; NXDOMAIN when nothing matched
    rcode = 0 if rdata is not None else 3
    header = struct.pack("!HHHHHH", qid, 0x8400 | (flags & 0x0100) | 0x0080 | rcode, 1, 1 if rdata is not None else 0, 0, 0)
    out = header + question
    if rdata is not None:
        out += b"\xc0\x0c" + struct.pack("!HHIH", rtype, qclass, 60, len(rdata)) + rdata
    return out


sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("127.0.0.1", 53))
while True:
    data, peer = sock.recvfrom(512)
    try:
        reply = answer(data)
    except (IndexError, struct.error, UnicodeError):
        reply = None
    if reply:
        sock.sendto(reply, peer)
