"""Enrollment benchmark (not a test): enrolls N users one after another with the
real `mfakey` binary, against moto behind the code-checking IAM proxy and a
`virtual-yubikey` card through pcscd, and prints per-enrollment figures.

Run through tests/bench/enroll.sh, which builds the release binaries and starts
the stack. Environment: MFAKEY_TEST_IAM_ENDPOINT, MFAKEY_TEST_MOTO_ENDPOINT
(from tests/stack/stack.sh env), MFAKEY_BIN, VIRTUAL_YUBIKEY_BIN.
"""

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

N = int(sys.argv[1]) if len(sys.argv) > 1 else 20
PORT, READER = 35966, "Virtual PCD B 00 01"
MFAKEY = os.environ["MFAKEY_BIN"]
CARD = os.environ["VIRTUAL_YUBIKEY_BIN"]
PROXY = os.environ["MFAKEY_TEST_IAM_ENDPOINT"]


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def proxy(path):
    with urllib.request.urlopen(PROXY + path, timeout=10) as r:
        return json.load(r)


def main():
    # The same cross-process lock the integration tests take for this reader.
    lock = open(os.path.join(tempfile.gettempdir(), f"mfakey-vpcd-{PORT}.lock"), "a")
    fcntl.flock(lock, fcntl.LOCK_EX)
    iam = boto3.client("iam", endpoint_url=os.environ["MFAKEY_TEST_MOTO_ENDPOINT"],
                       aws_access_key_id="bench", aws_secret_access_key="bench", region_name="us-east-1")
    run_id = str(int(time.time()))
    users = [f"bench-{run_id}-{i:03d}" for i in range(N + 1)]
    for u in users:
        iam.create_user(UserName=u)

    card = subprocess.Popen([CARD, "--vpcd", f"127.0.0.1:{PORT}", "--serial", "55500000"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        if not card.stdout.readline().startswith("ready"):
            sys.exit("bench: virtual-yubikey did not connect")
        time.sleep(0.3)  # pcscd notices the card
        home = tempfile.mkdtemp(prefix="mfakey-bench-")
        env = dict(os.environ, HOME=home, XDG_STATE_HOME=home, AWS_ACCESS_KEY_ID="bench",
                   AWS_SECRET_ACCESS_KEY="bench", AWS_REGION="us-east-1", AWS_ENDPOINT_URL=PROXY)
        base = [MFAKEY, "--json", "--reader", READER]

        # One enrollment with the APDU trace, to count APDUs.
        traced = subprocess.run(base + ["--trace-apdu", "enroll", "user", users[0]], env=env,
                                capture_output=True, text=True)
        if traced.returncode != 0:
            sys.exit(f"bench: traced enrollment failed: {traced.stdout}{traced.stderr}")
        apdus = sum(1 for line in traced.stderr.splitlines() if line.startswith("apdu > "))

        before = proxy("/__proxy__/stats")["requests"]
        wall, inner, steps = [], [], {}
        for u in users[1:]:
            t0 = time.perf_counter()
            r = subprocess.run(base + ["enroll", "user", u], env=env, capture_output=True, text=True)
            wall.append((time.perf_counter() - t0) * 1000)
            if r.returncode != 0:
                sys.exit(f"bench: enrollment of {u} failed: {r.stdout}{r.stderr}")
            rep = json.loads(r.stdout)["enrolled"]
            inner.append(rep["total_ms"])
            for s in rep["steps"]:
                steps.setdefault(s["step"], []).append(s["ms"])
        after = proxy("/__proxy__/stats")["requests"]
        enables = [e for e in proxy("/__proxy__/enables") if e["user"] in users]
        calls = {a: (after.get(a, 0) - before.get(a, 0)) / N for a in after if after.get(a, 0) != before.get(a, 0)}
    finally:
        card.terminate()
        card.wait()

    print(f"enrollments: {N} (release build, one process per enrollment)")
    print(f"wall time per enrollment (process start to exit): median {statistics.median(wall):.1f} ms, "
          f"p95 {pct(wall, 95):.1f} ms, max {max(wall):.1f} ms")
    print(f"mfakey's own total (preflight to verify):          median {statistics.median(inner):.1f} ms, "
          f"p95 {pct(inner, 95):.1f} ms")
    print("per step, median ms: " + ", ".join(f"{k} {statistics.median(v):.1f}" for k, v in steps.items()))
    print(f"APDUs per enrollment: {apdus}")
    print(f"IAM calls per enrollment: {sum(calls.values()):.1f} (" +
          ", ".join(f"{k} {v:g}" for k, v in sorted(calls.items())) + ")")
    accepted = sum(1 for e in enables if e["accepted"])
    print(f"EnableMFADevice checked by the proxy: {accepted} accepted of {len(enables)}")
    print("no 30-second wait: both codes are read from the key at once (steps T-1 and T)")


if __name__ == "__main__":
    main()
