"""Bulk benchmark (not a test): `mfakey --json bulk` enrolls a manifest of users
while a simulated operator swaps `virtual-yubikey` cards in vpcd readers as
its event lines ask, and prints how long mfakey itself takes per key and per
tray, and keys per hour.

The operator: one swap takes --swap-ms (taking the done key or tray out and
putting the next one in); each key also costs --per-key-ms of handling
(labelling, unpacking; default 0). One at a time, every key is a swap; in
tray mode (--parallel, --readers N) one swap exchanges a whole tray of N
keys. mfakey's own time is what its events say: `ms` of each `enrolled`
(from noticing the key), and per tray from the first `key_inserted` to the
last `enrolled`.

Run through tests/bench/bulk.sh, which builds the binaries and starts a stack
with enough readers. Environment: MFAKEY_TEST_IAM_ENDPOINT,
MFAKEY_TEST_MOTO_ENDPOINT, MFAKEY_BIN, VIRTUAL_YUBIKEY_BIN.
"""

import argparse
import fcntl
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import boto3

MFAKEY = os.environ["MFAKEY_BIN"]
CARD = os.environ["VIRTUAL_YUBIKEY_BIN"]
LETTERS = ["", " B", " C", " D", " E", " F", " G", " H"]


def slots(n):
    """The first n vpcd readers of the stack: (port, reader name)."""
    out = []
    for i, letter in enumerate(LETTERS):
        for s in range(2):
            out.append((35963 + 2 * i + s, f"Virtual PCD{letter} 00 0{s}"))
    return out[:n]


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, max(0, -(-p * len(values) // 100) - 1))]


class Cards:
    """virtual-yubikey processes, one per occupied reader (a touch, when a
    credential wants one, comes after touch_ms)."""

    def __init__(self, touch_ms=0):
        self.by_port = {}
        self.touch = ["--touch", f"delay-ms={touch_ms:g}"] if touch_ms else []

    def insert(self, port):
        serial = random.randint(10_000_000, 89_999_999)
        p = subprocess.Popen([CARD, "--vpcd", f"127.0.0.1:{port}", "--serial", str(serial), *self.touch],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.by_port[port] = p
        return p

    def ready(self, port):
        p = self.by_port[port]
        if not p.stdout.readline().startswith("ready"):
            sys.exit(f"bench: virtual-yubikey on port {port} did not connect")

    def remove(self, port):
        p = self.by_port.pop(port, None)
        if p:
            p.terminate()
            p.wait()

    def remove_all(self):
        for port in list(self.by_port):
            self.remove(port)


class Bulk:
    """A running `mfakey --json bulk` and its event lines."""

    def __init__(self, manifest, work, reader, parallel):
        args = [MFAKEY, "--json", "--reader", reader, "bulk", manifest,
                "--journal", os.path.join(work, f"bulk-{time.time_ns()}.jsonl")]
        if parallel:
            args.append("--parallel")
        self.stderr = open(os.path.join(work, "stderr"), "a")
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self.stderr, text=True)

    def events(self):
        for line in self.proc.stdout:
            v = json.loads(line)
            if "event" in v:
                yield v

    def finish(self):
        if self.proc.wait() != 0:
            sys.exit("bench: mfakey bulk failed (stderr in the work folder)")


def make_users(prefix, n):
    iam = boto3.client("iam", endpoint_url=os.environ["MFAKEY_TEST_MOTO_ENDPOINT"],
                       region_name="us-east-1", aws_access_key_id="testing",
                       aws_secret_access_key="testing")
    users = [f"{prefix}-{i}" for i in range(n)]
    for u in users:
        iam.create_user(UserName=u)
    return users


def manifest(work, name, users, touch_every=0):
    """The users; with touch_every N, every Nth one's credential wants a touch."""
    path = os.path.join(work, f"{name}.csv")
    rows = [f"{u},{'yes' if touch_every and i % touch_every == 0 else 'no'}"
            for i, u in enumerate(users)]
    with open(path, "w") as f:
        f.write("user,touch\n" + "\n".join(rows) + "\n")
    return path


def one_at_a_time(users, work, a):
    """One reader; each key is one swap."""
    (port, reader), = slots(1)
    cards = Cards()
    bulk = Bulk(manifest(work, "one", users), work, reader, parallel=False)
    ms, t0 = [], time.monotonic()
    try:
        for e in bulk.events():
            if e["event"] == "next":
                time.sleep((a.swap_ms + a.per_key_ms) / 1000)
                cards.insert(port)
                cards.ready(port)
            elif e["event"] == "enrolled":
                ms.append(e["ms"])
            elif e["event"] == "remove_key":
                cards.remove(port)
            elif e["event"] in ("failed", "key_skipped"):
                print(f"bench: {e}", file=sys.stderr)
        bulk.finish()
    finally:
        cards.remove_all()
    return ms, [], time.monotonic() - t0


def tray(users, work, a):
    """N readers; one swap exchanges the whole tray."""
    readers = slots(a.readers)
    cards = Cards(a.touch_ms)
    touch_every = a.readers if a.touch_ms else 0
    bulk = Bulk(manifest(work, "tray", users, touch_every), work, "Virtual PCD", parallel=True)
    left = len(users)
    ms, trays, t0 = [], [], time.monotonic()
    state = {"out": 0, "first": None, "last": None}

    def load():
        # The swap, and each key's handling, then the whole tray goes in.
        k = min(len(readers), left)
        time.sleep((a.swap_ms + k * a.per_key_ms) / 1000)
        state.update(out=k, first=None, last=None)
        for port, _ in readers[:k]:
            cards.insert(port)
        for port, _ in readers[:k]:
            cards.ready(port)

    try:
        load()
        for e in bulk.events():
            ev = e["event"]
            if ev == "key_inserted" and state["first"] is None:
                state["first"] = time.monotonic()
            elif ev == "enrolled":
                ms.append(e["ms"])
                state["last"] = time.monotonic()
            elif ev in ("failed", "key_skipped"):
                print(f"bench: {e}", file=sys.stderr)
            if ev != "remove_key":
                continue
            port = next(p for p, r in readers if r == e["reader"])
            cards.remove(port)
            state["out"] -= 1
            left -= 1
            if state["out"] == 0:
                trays.append((state["last"] - state["first"]) * 1000)
                if left > 0:
                    threading.Thread(target=load).start()
        bulk.finish()
    finally:
        cards.remove_all()
    return ms, trays, time.monotonic() - t0


def report(name, keys, ms, trays, wall):
    per_hour = keys / wall * 3600
    print(f"{name}: {keys} keys in {wall:.1f} s: {per_hour:.0f} keys per hour")
    print(f"  mfakey per key (noticed -> enrolled): median {statistics.median(ms):.0f} ms, "
          f"p95 {pct(ms, 95):.0f} ms, max {max(ms):.0f} ms")
    if trays:
        print(f"  mfakey per tray (first key noticed -> last enrolled): median "
              f"{statistics.median(trays):.0f} ms, max {max(trays):.0f} ms, "
              f"each: {', '.join(f'{t:.0f}' for t in trays)} ms")
    return per_hour


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("users", type=int, nargs="?", default=24)
    ap.add_argument("--readers", type=int, default=8)
    ap.add_argument("--swap-ms", type=float, default=5000)
    ap.add_argument("--per-key-ms", type=float, default=0)
    ap.add_argument("--mode", choices=("both", "one", "tray"), default="both")
    # One key per tray whose credential wants a touch that comes this late:
    # shows whether one key waiting holds the others up.
    ap.add_argument("--touch-ms", type=float, default=0)
    a = ap.parse_args()
    locks = []
    for port, _ in slots(max(a.readers, 1)):
        f = open(os.path.join(tempfile.gettempdir(), f"mfakey-vpcd-{port}.lock"), "a")
        fcntl.flock(f, fcntl.LOCK_EX)
        locks.append(f)
    work = tempfile.mkdtemp(prefix="mfakey-bulk-bench-")
    os.environ.update(HOME=work, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                      AWS_REGION="us-east-1", AWS_ENDPOINT_URL=os.environ["MFAKEY_TEST_IAM_ENDPOINT"])
    prefix = f"bulkbench{os.getpid()}x{int(time.time())}"
    print(f"bench: {a.users} keys, operator: {a.swap_ms:g} ms per swap, {a.per_key_ms:g} ms per key; "
          f"tray of {a.readers} readers; {MFAKEY}")
    rates = {}
    if a.mode in ("both", "one"):
        users = make_users(prefix + "o", a.users)
        rates["one"] = report("one at a time (1 reader)", a.users, *one_at_a_time(users, work, a))
    if a.mode in ("both", "tray"):
        users = make_users(prefix + "t", a.users)
        rates["tray"] = report(f"tray mode ({a.readers} readers)", a.users, *tray(users, work, a))
    if len(rates) == 2:
        print(f"tray mode / one at a time: {rates['tray'] / rates['one']:.1f}x keys per hour")


if __name__ == "__main__":
    main()
