"""Enrollment benchmark (not a test): enrolls N users one after another with the
real `mfakey` binary, against moto behind the code-checking IAM proxy and a
`virtual-yubikey` card through pcscd, and prints per-enrollment figures.

With --iam-delay-ms D, every IAM request first goes through a delaying proxy
on loopback (tests/bench/delay_proxy.py) that holds it D ms: a desk far from
IAM's endpoint. The sequential IAM rounds of each enrollment are counted from
that proxy's request log (the most requests of one enrollment no two of which
overlap in time); without a delay, they are counted on three more enrollments
through the delaying proxy at 50 ms.

Run through tests/bench/enroll.sh, which builds the release binaries and starts
the stack. Environment: MFAKEY_TEST_IAM_ENDPOINT, MFAKEY_TEST_MOTO_ENDPOINT
(from tests/stack/stack.sh env), MFAKEY_BIN, VIRTUAL_YUBIKEY_BIN.
"""

import argparse
import fcntl
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

import boto3

PORT, READER = 35966, "Virtual PCD B 00 01"
MFAKEY = os.environ["MFAKEY_BIN"]
CARD = os.environ["VIRTUAL_YUBIKEY_BIN"]
PROXY = os.environ["MFAKEY_TEST_IAM_ENDPOINT"]
HERE = os.path.dirname(os.path.abspath(__file__))
ROUNDS_DELAY_MS = 50


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def proxy(path):
    with urllib.request.urlopen(PROXY + path, timeout=10) as r:
        return json.load(r)


def sequential_rounds(requests):
    """The most requests no two of which overlap: each is one more round trip
    the enrollment waited for, one after the other."""
    rounds, free_from = [], None
    for r in sorted(requests, key=lambda r: r["end"]):
        if free_from is None or r["start"] >= free_from:
            rounds.append([r])
            free_from = r["end"]
    # Name each round by every request that overlaps its representative.
    named = []
    for (rep,) in rounds:
        named.append(sorted(q["action"] for q in requests
                            if q["start"] < rep["end"] and q["end"] > rep["start"]))
    return named


class Delay:
    """A delaying proxy in front of the IAM proxy, and its request log."""

    def __init__(self, delay_ms, workdir):
        self.log = os.path.join(workdir, f"delay-{delay_ms}.jsonl")
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "delay_proxy.py"), "--listen-port", "0",
             "--upstream", PROXY, "--delay-ms", str(delay_ms), "--log", self.log],
            stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("listening "):
            sys.exit("bench: the delaying proxy did not start")
        self.endpoint = f"http://127.0.0.1:{int(line.split()[1])}"

    def requests_between(self, t0, t1):
        with open(self.log, encoding="utf-8") as f:
            reqs = [json.loads(l) for l in f if l.strip()]
        return [r for r in reqs if r["start"] >= t0 and r["end"] <= t1]

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


def enroll(base, env, user, delay=None):
    """One enrollment: (wall ms, mfakey's report, its sequential rounds)."""
    t0 = time.time()
    p0 = time.perf_counter()
    r = subprocess.run(base + ["enroll", "user", user], env=env, capture_output=True, text=True)
    wall = (time.perf_counter() - p0) * 1000
    t1 = time.time()
    if r.returncode != 0:
        sys.exit(f"bench: enrollment of {user} failed: {r.stdout}{r.stderr}")
    rounds = sequential_rounds(delay.requests_between(t0, t1)) if delay else None
    return wall, json.loads(r.stdout)["enrolled"], rounds


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("n", type=int, nargs="?", default=20)
    ap.add_argument("--iam-delay-ms", type=float, default=0)
    a = ap.parse_args()
    n, delay_ms = a.n, a.iam_delay_ms
    # The same cross-process lock the integration tests take for this reader.
    lock = open(os.path.join(tempfile.gettempdir(), f"mfakey-vpcd-{PORT}.lock"), "a")
    fcntl.flock(lock, fcntl.LOCK_EX)
    iam = boto3.client("iam", endpoint_url=os.environ["MFAKEY_TEST_MOTO_ENDPOINT"],
                       aws_access_key_id="bench", aws_secret_access_key="bench", region_name="us-east-1")
    run_id = str(int(time.time()))
    users = [f"bench-{run_id}-{i:03d}" for i in range(n + 4)]
    for u in users:
        iam.create_user(UserName=u)

    work = tempfile.mkdtemp(prefix="mfakey-bench-")
    card = subprocess.Popen([CARD, "--vpcd", f"127.0.0.1:{PORT}", "--serial", "55500000"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    delay = rounds_delay = None
    try:
        if not card.stdout.readline().startswith("ready"):
            sys.exit("bench: virtual-yubikey did not connect")
        time.sleep(0.3)  # pcscd notices the card
        env = dict(os.environ, HOME=work, XDG_STATE_HOME=work, AWS_ACCESS_KEY_ID="bench",
                   AWS_SECRET_ACCESS_KEY="bench", AWS_REGION="us-east-1", AWS_ENDPOINT_URL=PROXY)
        if delay_ms > 0:
            delay = Delay(delay_ms, work)
            env["AWS_ENDPOINT_URL"] = delay.endpoint
        base = [MFAKEY, "--json", "--reader", READER]

        # One enrollment with the APDU trace, to count APDUs.
        traced = subprocess.run(base + ["--trace-apdu", "enroll", "user", users[0]], env=env,
                                capture_output=True, text=True)
        if traced.returncode != 0:
            sys.exit(f"bench: traced enrollment failed: {traced.stdout}{traced.stderr}")
        apdus = sum(1 for line in traced.stderr.splitlines() if line.startswith("apdu > "))

        before = proxy("/__proxy__/stats")["requests"]
        wall, inner, steps, rounds = [], [], {}, []
        for u in users[1:n + 1]:
            w, rep, r = enroll(base, env, u, delay)
            wall.append(w)
            inner.append(rep["total_ms"])
            for s in rep["steps"]:
                steps.setdefault(s["step"], []).append(s["ms"])
            if r is not None:
                rounds.append(r)
        after = proxy("/__proxy__/stats")["requests"]
        if delay is None:
            # Rounds are told apart by time: count them at a measurable delay.
            rounds_delay = Delay(ROUNDS_DELAY_MS, work)
            env["AWS_ENDPOINT_URL"] = rounds_delay.endpoint
            rounds = [enroll(base, env, u, rounds_delay)[2] for u in users[n + 1:]]
        enables = [e for e in proxy("/__proxy__/enables") if e["user"] in users]
        calls = {k: (after.get(k, 0) - before.get(k, 0)) / n for k in after
                 if after.get(k, 0) != before.get(k, 0)}
    finally:
        for d in (delay, rounds_delay):
            if d:
                d.stop()
        card.terminate()
        card.wait()

    added = f", {delay_ms:g} ms added per IAM request" if delay_ms else ", no added delay"
    print(f"enrollments: {n} (release build, one process per enrollment{added})")
    print(f"wall time per enrollment (process start to exit): median {statistics.median(wall):.1f} ms, "
          f"p95 {pct(wall, 95):.1f} ms, max {max(wall):.1f} ms")
    print(f"mfakey's own total (preflight to verify):          median {statistics.median(inner):.1f} ms, "
          f"p95 {pct(inner, 95):.1f} ms")
    print("per step, median ms: " + ", ".join(f"{k} {statistics.median(v):.1f}" for k, v in steps.items()))
    counts = [len(r) for r in rounds]
    at = f"{delay_ms:g}" if delay_ms else f"{ROUNDS_DELAY_MS} (3 extra enrollments)"
    print(f"sequential IAM rounds per enrollment, from the delaying proxy's log at {at} ms per request: "
          f"min {min(counts)}, median {statistics.median(counts):g}, max {max(counts)}")
    print("  rounds of the last one: " + " | ".join(" + ".join(r) for r in rounds[-1]))
    print(f"APDUs per enrollment: {apdus}")
    print(f"IAM calls per enrollment: {sum(calls.values()):.1f} (" +
          ", ".join(f"{k} {v:g}" for k, v in sorted(calls.items())) + ")")
    accepted = sum(1 for e in enables if e["accepted"])
    print(f"EnableMFADevice checked by the proxy: {accepted} accepted of {len(enables)}")
    print("no 30-second wait: both codes are read from the key at once (steps T-1 and T)")


if __name__ == "__main__":
    main()
