"""Vectors from Yubico's yubikit for mfakey's OATH tests: how it parses ids,
and the exact APDUs its OathSession sends. Run with yubikey-manager installed:
    python gen_yubikit_vectors.py yubikit_vectors.json
"""
import json, random, sys
from yubikit.core import TRANSPORT
from yubikit.core.smartcard import SmartCardConnection
from yubikit.oath import (OathSession, CredentialData, OATH_TYPE, HASH_ALGORITHM,
                          _parse_cred_id, _format_cred_id)

class Fake(SmartCardConnection):
    def __init__(self, answers):
        self.answers = list(answers); self.sent = []
    @property
    def transport(self): return TRANSPORT.NFC
    def send_and_receive(self, apdu):
        self.sent.append(apdu.hex())
        data, sw = self.answers.pop(0)
        return bytes.fromhex(data), sw
    def close(self): pass

SELECT = ("790305070171080102030405060708", 0x9000)

out = {"ids": [], "put": []}
rng = random.Random(7)
alphabet = ["0", "1", "3", "/", ":", "a", "b", "\n", "é", " "]
samples = ["Example:bob", "60/Example:bob", "15/bob", "bob", ":bob", "30/:bob", "a/b:c",
           "007/x", "123/", "Example:", "60/Example:", "a:b\n", "a:b\nc", "60/", "/x", "0/x",
           "arn:aws:iam::123456789012:mfa/alice"]
for _ in range(150):
    samples.append("".join(rng.choice(alphabet) for _ in range(rng.randint(1, 8))))
seen = set()
for s in samples:
    if s in seen:
        continue
    seen.add(s)
    for t in (OATH_TYPE.TOTP, OATH_TYPE.HOTP):
        try:
            issuer, name, period = _parse_cred_id(s.encode(), t)
        except Exception as e:
            continue
        formatted = _format_cred_id(issuer, name, t, period).decode()
        out["ids"].append({"raw": s, "type": t.name.lower(), "issuer": issuer, "name": name,
                           "period": period, "formatted": formatted})

cases = [
    ("Amazon Web Services", "alice@123", OATH_TYPE.TOTP, HASH_ALGORITHM.SHA1, 6, 30, "48656c6c6f21deadbeef", False, 0),
    ("Amazon Web Services", "alice@123", OATH_TYPE.TOTP, HASH_ALGORITHM.SHA1, 6, 30, "48656c6c6f21deadbeef", True, 0),
    (None, "n", OATH_TYPE.HOTP, HASH_ALGORITHM.SHA256, 8, 30, "42" * 70, False, 7),
    ("I", "x", OATH_TYPE.TOTP, HASH_ALGORITHM.SHA512, 7, 60, "17" * 128, True, 0),
    ("I", "x", OATH_TYPE.TOTP, HASH_ALGORITHM.SHA512, 7, 15, "17" * 129, False, 0),
    ("", "plain", OATH_TYPE.TOTP, HASH_ALGORITHM.SHA256, 6, 30, "00" * 64, False, 0),
    ("Zürich", "größe", OATH_TYPE.HOTP, HASH_ALGORITHM.SHA1, 6, 30, "01" * 65, True, 4294967295),
]
for issuer, name, t, alg, digits, period, secret, touch, counter in cases:
    conn = Fake([SELECT, ("", 0x9000)])
    s = OathSession(conn)
    d = CredentialData(name, t, alg, bytes.fromhex(secret), digits, period, counter, issuer)
    s.put_credential(d, touch)
    out["put"].append({"issuer": issuer, "name": name, "type": t.name.lower(), "alg": alg.name,
                       "digits": digits, "period": period, "secret": secret, "touch": touch,
                       "counter": counter, "apdu": conn.sent[1]})

# CALCULATE and CALCULATE ALL challenges
conn = Fake([SELECT, ("7605064c93cf18", 0x9000)])
s = OathSession(conn)
creds = None
from yubikit.oath import Credential
c = Credential(s.device_id, b"60/I:n", "I", "n", OATH_TYPE.TOTP, 60, False)
code = s.calculate_code(c, 1111111109)
out["calculate"] = {"apdu": conn.sent[1], "code": code.value, "from": code.valid_from, "to": code.valid_to}
conn = Fake([SELECT, ("", 0x9000)])
s = OathSession(conn)
s.calculate_all(1111111109)
out["calculate_all"] = conn.sent[1]
conn = Fake([SELECT, ("", 0x9000), ("", 0x9000), ("", 0x9000)])
s = OathSession(conn)
s.delete_credential(b"Example:bob"); s.unset_key(); s.list_credentials()
out["misc"] = conn.sent[1:]
conn = Fake([("790305070171080102030405060708", 0x9000), ("", 0x9000), ("7903050701710811121314151617189000"[:-4], 0x9000)])
s = OathSession(conn); s.reset()
out["reset"] = conn.sent
conn = Fake([SELECT, ("", 0x9000)])
s = OathSession(conn); s.rename_credential(b"60/I:n", "m", "J")
out["rename"] = conn.sent[1]
out["device_id"] = s.device_id
with open(sys.argv[1], "w") as f:
    f.write("{\n")
    for i, key in enumerate(out):
        v = out[key]
        if isinstance(v, list) and v and isinstance(v[0], dict):
            body = "[\n" + ",\n".join(json.dumps(e, ensure_ascii=False) for e in v) + "\n]"
        else:
            body = json.dumps(v, ensure_ascii=False)
        f.write(json.dumps(key) + ": " + body + (",\n" if i < len(out) - 1 else "\n"))
    f.write("}\n")
