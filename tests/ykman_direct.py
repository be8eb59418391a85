#!/usr/bin/env python3
"""Run Yubico's ykman CLI against virtual-yubikey WITHOUT pcscd.

Developer fallback for tests/ykman_vk_smoke.sh (VK_SMOKE_MODE=direct): this
process plays pcscd's vpcd driver (listens on a free 127.0.0.1 port, frames
APDUs the same way: 2-byte big-endian length + payload, control bytes 0/1/4),
starts `$VK_BIN --vpcd 127.0.0.1:PORT $VK_ARGS`, and hands ykman a fake
pyscard reader named "Virtual PCD 00 00" whose connection talks to it. All of
ykman's own command, session and protocol code runs unchanged; only the
PC/SC layer is replaced. Usage: ykman_direct.py <ykman arguments...>
"""
import os
import shlex
import socket
import struct
import subprocess
import sys

READER = "Virtual PCD 00 00"


class Card:
    def __init__(self):
        srv = socket.socket()
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        port = srv.getsockname()[1]
        args = [os.environ["VK_BIN"], "--vpcd", f"127.0.0.1:{port}"]
        args += shlex.split(os.environ.get("VK_ARGS", ""))
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL)
        srv.settimeout(10)
        self.sock, _ = srv.accept()
        srv.close()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _send(self, payload):
        self.sock.sendall(struct.pack(">H", len(payload)) + payload)

    def _recv_exact(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise EOFError("virtual-yubikey closed the connection")
            buf += chunk
        return buf

    def request(self, payload):
        self._send(payload)
        (n,) = struct.unpack(">H", self._recv_exact(2))
        return self._recv_exact(n)

    def control(self, byte):
        self._send(bytes([byte]))

    def close(self):
        self.sock.close()  # card removed: virtual-yubikey exits 0
        rc = self.proc.wait(timeout=10)
        if rc != 0:
            raise SystemExit(f"virtual-yubikey exited {rc} when the card was removed")


CARD = None


class FakeConnection:
    """The subset of pyscard's CardConnection that ykman uses."""

    def connect(self, *args, **kwargs):
        CARD.control(1)

    def getATR(self):
        return list(CARD.request(b"\x04"))

    def transmit(self, apdu, *args):
        r = CARD.request(bytes(apdu))
        return list(r[:-2]), r[-2], r[-1]

    def disconnect(self):
        CARD.control(0)

    def release(self):
        pass


class FakeReader:
    name = READER

    def createConnection(self):
        return FakeConnection()

    def __str__(self):
        return self.name


def main():
    global CARD
    os.environ["YKMAN_NO_EXLUSIVE"] = "1"
    import ykman.pcsc

    ykman.pcsc.list_readers = lambda: [FakeReader()]
    ykman.pcsc.kill_scdaemon = lambda: False
    ykman.pcsc.kill_yubikey_agent = lambda: False
    from ykman._cli.__main__ import main as ykman_main

    CARD = Card()
    sys.argv = ["ykman"] + sys.argv[1:]
    code = 0
    try:
        ykman_main()
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        CARD.close()
    sys.exit(code)


if __name__ == "__main__":
    main()
