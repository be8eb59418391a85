#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora into DIR/<target>/.

The seeds come from the project's own test data: the ids recorded from
Yubico's yubikit (src/oath/testdata/yubikit_vectors.json) built into the
card answers that carry them (SELECT, LIST, CALCULATE, CALCULATE ALL), the
Management answers of src/management.rs's tests, the manifests of the bulk
tests, journal lines in the shapes mfakey writes, and seeds as people paste
them. Card sessions are written in the fuzz harness's script format: each
answer is one length byte and that many bytes.

    fuzz/seeds.py DIR
"""
import hashlib
import json
import os
import re
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tlv(tag, value):
    n = len(value)
    if n < 0x80:
        head = bytes([tag, n])
    elif n <= 0xFF:
        head = bytes([tag, 0x81, n])
    else:
        head = bytes([tag, 0x82, n >> 8, n & 0xFF])
    return head + value


def script(*answers):
    """A scripted card: each answer (data + SW) as length byte + bytes,
    split with 61xx / SEND REMAINING where longer than 253 bytes."""
    out = b""
    for a in answers:
        data, sw = a[:-2], a[-2:]
        while len(data) > 253:
            out += bytes([255]) + data[:253] + b"\x61\x00"
            data = data[253:]
        out += bytes([len(data) + 2]) + data + sw
    return out


def ok(data):
    return data + b"\x90\x00"


def main(dest):
    vectors = json.load(open(os.path.join(REPO, "src/oath/testdata/yubikit_vectors.json")))
    ids = sorted({e["raw"].encode() for e in vectors["ids"]})
    seeds = {t: [] for t in TARGETS}

    select_plain = tlv(0x79, b"\x05\x07\x01") + tlv(0x71, bytes(range(1, 9)))
    select_locked = select_plain + tlv(0x74, bytes(range(8))) + tlv(0x7B, b"\x01")
    seeds["oath_select"] += [select_plain, select_locked, tlv(0x79, b"\x04\x02\x07") + tlv(0x71, b"\x00" * 8)]

    listing = b"".join(tlv(0x72, bytes([0x21]) + i) for i in ids[:40])
    seeds["oath_list"] += [listing, tlv(0x72, b"\x11hotp:x") + tlv(0x72, b"\x23sha512")]
    seeds["oath_list"] += [tlv(0x72, bytes([0x21]) + i) for i in ids[40:120]]

    code = tlv(0x76, b"\x06\x4c\x93\xcf\x18")
    full = tlv(0x75, b"\x06" + hashlib.sha1(b"x").digest())
    seeds["oath_calculate"] += [code, full, tlv(0x75, b"\x08" + hashlib.sha256(b"y").digest()), b"\x76\x05\x08\x00\x00\x00\x01"]

    all_answer = b""
    for i in ids[:12]:
        all_answer += tlv(0x71, i) + code
    all_answer += tlv(0x71, b"hotp:x") + tlv(0x77, b"\x06") + tlv(0x71, b"touch:y") + tlv(0x7C, b"\x06")
    listed = b"".join(tlv(0x72, bytes([0x21]) + i) for i in ids[:12])
    listed += tlv(0x72, b"\x11hotp:x") + tlv(0x72, b"\x22touch:y")
    seeds["oath_calculate_all"] += [
        all_answer,
        script(ok(select_plain), ok(listed), ok(all_answer), ok(code), ok(code), ok(code)),
        script(ok(select_plain), ok(tlv(0x72, b"\x210/x")), ok(tlv(0x71, b"0/x") + code)),
    ]

    # src/management.rs tests: a YubiKey 5 NFC's READ CONFIG.
    body = bytes.fromhex(
        "0102023f0302023b0204012c5f6e04010105030507010d02023f0e02023b"
        "0a0100060200000701 0f080180".replace(" ", ""))
    page = bytes([len(body)]) + body
    seeds["management_config"] += [
        script(ok(b"Virtual mgr - FW version 5.7.1"), ok(page)),
        script(ok(b"5.4.3"), ok(bytes.fromhex("0901 02023f 0503050403".replace(" ", ""))), ok(b""), ok(b"\x00\xbc\x61\x4e")),
        script(ok(b"5.7.2"), ok(bytes.fromhex("070202010210 0101".replace(" ", ""))), ok(bytes.fromhex("0505030507 02".replace(" ", "")))),
        script(ok(b"4.0.5")),
    ]

    seeds["apdu_response"] += [b"\x90\x00", b"\x01\x02\x61\x02", script(ok(listing)), b"\x6a\x82", b"\x63\xc3"]
    seeds["tlv"] += [listing, all_answer, select_locked, body, tlv(0x73, b"\x00" * 300)]

    seeds["manifest"] += manifests()
    seeds["journal"] += journals()
    seeds["base32_seed"] += [
        b"JBSWY3DPEHPK3PXP",
        b"jbsw y3dp ehpk 3pxp",
        b"JBSWY3DPEHPK3PXP====\n",
        b"otpauth://totp/Amazon%20Web%20Services:alice@123?secret=JBSWY3DPEHPK3PXP&issuer=Amazon%20Web%20Services",
        b"GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ",
        b"JBSWY3DPE\xc2\xa0HPK3PXP",
    ]
    for t, items in seeds.items():
        d = os.path.join(dest, t)
        os.makedirs(d, exist_ok=True)
        for data in items:
            name = hashlib.sha1(data).hexdigest()
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)


def manifests():
    """The manifests the bulk tests parse (Rust string literals that start
    with a header naming `user`), plus a few written here."""
    out = [
        b"user\nalice\nbob\n",
        b"user,device_name,touch,key_serial,profile,groups\nalice,,yes,12345678,,admins;ops\nbob,bob-desk,no,,prod,\n",
        b"user,role_arn\ncarol,arn:aws:iam::123456789012:role/ops/Enroller\n",
        b"# comment\nuser,touch\nAlice,y\nalice,n\n",
    ]
    lit = re.compile(r'"(user[^"\\]*(?:\\.[^"\\]*)*)"', re.S)
    for path in ["src/bulk/manifest.rs", "src/bulk/tests.rs", "src/bulk/dry_run.rs", "tests/bulk.rs"]:
        p = os.path.join(REPO, path)
        if not os.path.exists(p):
            continue
        for m in lit.finditer(open(p).read()):
            text = m.group(1)
            text = re.sub(r"\\\n\s*", "", text)
            text = text.replace("\\n", "\n").replace('\\"', '"').replace("\\\\", "\\")
            if "\n" in text:
                out.append(text.encode())
    return out


def journals():
    entry = {"ts": 1700000000, "run": "0123456789abcdef", "event": "begin", "user": "alice",
             "account_id": "123456789012", "device_name": "alice-yk"}
    lines = [dict(entry)]
    for ev in ["created", "writing", "written", "enabled", "done"]:
        e = dict(entry, event=ev, device_serial="arn:aws:iam::123456789012:mfa/alice-yk", key_serial=12345678,
                 credential_id="Amazon Web Services:alice@123456789012")
        if ev == "writing":
            e["proof"] = {"challenge": "ff00000000000001", "response": "00" * 20}
        lines.append(e)
    torn = "\n".join(json.dumps(l) for l in lines[:3]) + '\n{"ts": 17000'
    bulk = [{"ts": 1, "bulk_run": "r1", "mark": "start", "detail": "2 users"},
            {"ts": 2, "bulk_run": "r1", "mark": "begin", "user": "alice", "key_serial": 7, "touch": False},
            {"ts": 3, "bulk_run": "r1", "mark": "enrolled", "user": "alice", "key_serial": 7}]
    return [
        "\n".join(json.dumps(l) for l in lines).encode() + b"\n",
        torn.encode(),
        "\n".join(json.dumps(l) for l in bulk).encode() + b"\n",
        b"\n\n",
    ]


TARGETS = ["apdu_response", "tlv", "oath_select", "oath_list", "oath_calculate",
           "oath_calculate_all", "management_config", "manifest", "journal", "base32_seed"]

if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: fuzz/seeds.py DIR")
    main(sys.argv[1])
