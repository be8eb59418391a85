#!/usr/bin/env python3
"""Time per APDU against virtual-yubikey.

  apdu_latency.py pcsc "Virtual PCD 00 00" [N]   # through pcscd (pyscard); a card must be inserted
  apdu_latency.py direct VK_BIN [N]              # no pcscd: this script plays the vpcd driver,
                                                 # writing length and payload separately as it does
Each round is one OATH CALCULATE (TOTP, truncated) after a SELECT and a PUT.
Prints the median and the 95th percentile in milliseconds, and reconnect time.
"""
import socket
import statistics
import struct
import subprocess
import sys
import time

SELECT_OATH = bytes.fromhex("00a4040007a0000005272101")
# PUT "lat" TOTP SHA1 6 digits, 20-byte key.
_PUT_DATA = bytes.fromhex("7103" + "6c6174" + "7316" + "2106" + "31" * 20)
PUT = bytes([0, 1, 0, 0, len(_PUT_DATA)]) + _PUT_DATA
CALC = bytes.fromhex("00a200010f" + "7103" + "6c6174" + "7408" + "0000000003a2e2b0")


def report(name, samples):
    samples = sorted(samples)
    p95 = samples[int(len(samples) * 0.95) - 1]
    print(f"{name}: n={len(samples)} median={statistics.median(samples):.3f} ms p95={p95:.3f} ms")


def pcsc(reader_name, n):
    from smartcard.System import readers

    reader = next(r for r in readers() if str(r) == reader_name)
    conn = reader.createConnection()
    conn.connect()

    def tx(apdu):
        data, sw1, sw2 = conn.transmit(list(apdu))
        return sw1 << 8 | sw2

    assert tx(SELECT_OATH) == 0x9000
    assert tx(PUT) == 0x9000
    times = []
    for _ in range(n):
        t = time.perf_counter()
        assert tx(CALC) == 0x9000
        times.append((time.perf_counter() - t) * 1e3)
    report("CALCULATE via pcscd", times)
    conn.disconnect()
    recon = []
    for _ in range(max(5, n // 20)):
        t = time.perf_counter()
        c = reader.createConnection()
        c.connect()
        data, sw1, sw2 = c.transmit(list(SELECT_OATH))
        c.disconnect()
        recon.append((time.perf_counter() - t) * 1e3)
    report("connect+SELECT+disconnect via pcscd", recon)


def direct(vk_bin, n):
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    proc = subprocess.Popen([vk_bin, "--vpcd", f"127.0.0.1:{port}"], stdout=subprocess.DEVNULL)
    s, _ = srv.accept()

    def recv_exact(k):
        b = b""
        while len(b) < k:
            c = s.recv(k - len(b))
            if not c:
                raise EOFError
            b += c
        return b

    def tx(apdu):
        # Two writes, like the vpcd driver: length, then payload.
        s.send(struct.pack(">H", len(apdu)))
        s.send(apdu)
        (k,) = struct.unpack(">H", recv_exact(2))
        r = recv_exact(k)
        return r[-2] << 8 | r[-1]

    s.send(b"\x00\x01\x01")
    assert tx(SELECT_OATH) == 0x9000
    assert tx(PUT) == 0x9000
    times = []
    for _ in range(n):
        t = time.perf_counter()
        assert tx(CALC) == 0x9000
        times.append((time.perf_counter() - t) * 1e3)
    report("CALCULATE over vpcd framing (no pcscd)", times)
    s.close()
    proc.wait(timeout=10)


if __name__ == "__main__":
    mode, target = sys.argv[1], sys.argv[2]
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
    (pcsc if mode == "pcsc" else direct)(target, n)
