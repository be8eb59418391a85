"""Lifecycle benchmark (not a test): N users enrolled on one key, then the
real `mfakey` binary's `inventory`, `replace` (onto a second key) and `revoke`
(of the second key) timed, in an AWS account of their own (STS AssumeRole into
a fresh moto account), against moto behind the code-checking IAM proxy and two
`virtual-yubikey` cards through pcscd. Prints wall times and IAM calls.

Run through tests/bench/lifecycle.sh, which builds the release binaries and
starts the stack.
"""

import fcntl
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import urllib.request

import boto3

N = int(sys.argv[1]) if len(sys.argv) > 1 else 20
SLOTS = [(35965, "Virtual PCD B 00 00"), (35966, "Virtual PCD B 00 01")]
MFAKEY = os.environ["MFAKEY_BIN"]
CARD = os.environ["VIRTUAL_YUBIKEY_BIN"]
PROXY = os.environ["MFAKEY_TEST_IAM_ENDPOINT"]
MOTO = os.environ["MFAKEY_TEST_MOTO_ENDPOINT"]


def proxy(path):
    with urllib.request.urlopen(PROXY + path, timeout=10) as r:
        return json.load(r)


def card(port, serial):
    c = subprocess.Popen([CARD, "--vpcd", f"127.0.0.1:{port}", "--serial", str(serial)],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    if not c.stdout.readline().startswith("ready"):
        sys.exit("bench: virtual-yubikey did not connect")
    return c


def timed(env, args, stdin=""):
    """Runs mfakey; (wall ms, JSON document, IAM calls by action)."""
    before = proxy("/__proxy__/stats")["requests"]
    t0 = time.perf_counter()
    r = subprocess.run([MFAKEY, "--json"] + args, env=env, capture_output=True, text=True, input=stdin)
    ms = (time.perf_counter() - t0) * 1000
    if r.returncode != 0:
        sys.exit(f"bench: {args} failed: {r.stdout}{r.stderr}")
    after = proxy("/__proxy__/stats")["requests"]
    calls = {a: after[a] - before.get(a, 0) for a in after if after[a] != before.get(a, 0)}
    return ms, json.loads(r.stdout.splitlines()[-1]), calls


def show(what, ms, calls):
    total = sum(calls.values())
    print(f"{what}: {ms:.0f} ms wall, {total} IAM/STS calls (" +
          ", ".join(f"{k} {v}" for k, v in sorted(calls.items())) + ")")


def main():
    # The same cross-process locks the integration tests take for these readers.
    locks = []
    for port, _ in SLOTS:
        f = open(os.path.join(tempfile.gettempdir(), f"mfakey-vpcd-{port}.lock"), "a")
        fcntl.flock(f, fcntl.LOCK_EX)
        locks.append(f)
    account = "%012d" % (700_000_000_000 + random.randrange(10 ** 9))
    sts = boto3.client("sts", endpoint_url=MOTO, aws_access_key_id="bench",
                       aws_secret_access_key="bench", region_name="us-east-1")
    creds = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/bench",
                            RoleSessionName="bench")["Credentials"]
    iam = boto3.client("iam", endpoint_url=MOTO, aws_access_key_id=creds["AccessKeyId"],
                       aws_secret_access_key=creds["SecretAccessKey"],
                       aws_session_token=creds["SessionToken"], region_name="us-east-1")
    users = [f"life-{i:03d}" for i in range(N)]
    for u in users:
        iam.create_user(UserName=u)
    home = tempfile.mkdtemp(prefix="mfakey-bench-")
    env = dict(os.environ, HOME=home, XDG_STATE_HOME=home, AWS_ACCESS_KEY_ID=creds["AccessKeyId"],
               AWS_SECRET_ACCESS_KEY=creds["SecretAccessKey"], AWS_SESSION_TOKEN=creds["SessionToken"],
               AWS_REGION="us-east-1", AWS_ENDPOINT_URL=PROXY)
    old, new = 56600001, 56600002
    cards = [card(SLOTS[0][0], old), card(SLOTS[1][0], new)]
    try:
        time.sleep(0.5)  # pcscd notices the cards
        for u in users:
            timed(env, ["--reader", SLOTS[0][1], "enroll", "user", u])
        print(f"users: {N}, each on key {old} (release build, account {account})")
        ms, doc, calls = timed(env, ["inventory"])
        assert len(doc["inventory"]["keys"][0]["devices"]) == N
        show(f"inventory of {N} devices", ms, calls)
        ms, doc, calls = timed(env, ["--reader", SLOTS[1][1], "replace", "--key-serial", str(old), "--yes"])
        assert len(doc["replace"]["moved"]) == N and not doc["replace"]["without_mfa"]
        show(f"replace of {N} users onto key {new}", ms, calls)
        print(f"  per user: {ms / N:.0f} ms (an enrollment, then the old device revoked)")
        ms, doc, calls = timed(env, ["revoke", "--key-serial", str(new), "--yes"])
        assert len(doc["revoke"]["devices"]) == N and len(doc["revoke"]["without_mfa"]) == N
        show(f"revoke of {N} devices", ms, calls)
        print(f"  per device: {ms / N:.0f} ms")
    finally:
        for c in cards:
            c.terminate()
            c.wait()


if __name__ == "__main__":
    main()
