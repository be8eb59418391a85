#!/usr/bin/env python3
"""A code-checking IAM proxy in front of moto's server, for mfakey's tests.

moto's EnableMFADevice accepts any codes (even for a device that does not
exist), so a test cannot learn from moto whether the right codes were sent.
This proxy sits between the client and moto and behaves like real IAM there:

* CreateVirtualMFADevice: forwarded; the seed in the answer is remembered in
  memory only (never logged, never written), keyed by the device serial.
* EnableMFADevice / ResyncMFADevice: AuthenticationCode1/2 must be the TOTP
  codes (HMAC-SHA1, 6 digits, 30 s steps) of two consecutive steps T-1, T
  where T is within +-1 step of the proxy's clock (S-1 <= T <= S+1, with
  S = floor(now / 30)). So a pair generated up to ~30 s before or after the
  proxy's "now" is accepted, and one computed more than a full step away is
  refused. Refusals answer exactly like IAM: HTTP 403, awsQuery ErrorResponse
  with Code InvalidAuthenticationCode (botocore's IAM model gives 403), and
  are not forwarded. An unknown serial answers NoSuchEntity (404), as AWS does.
  A code AWS accepted once is refused after: the pair's first step must come
  after the last step accepted for the device (by an enable or a resync), so
  after an enable with (T-1, T) the next pair accepted is (T+1, T+2).
  Accepted EnableMFADevice calls are forwarded to moto. ResyncMFADevice
  (moto does not implement it) is answered here: the device must be enabled
  for UserName (moto's ListMFADevices shows it), else NoSuchEntity (404).
* Every EnableMFADevice/ResyncMFADevice adds one JSON line to --log FILE
  (and to the in-memory list behind GET /__proxy__/enables):
  {"action", "serial", "user", "accepted", "step", "reason", "time"};
  never seeds, never codes. So does every DeactivateMFADevice moto answered
  200 (accepted true, step null): tests read the order of enables and
  deactivations per user from it.
* "now" is the real clock plus the offset set by /__proxy__/clock_offset. The
  offset moves both the Date header of every answer and the clock the codes
  are checked against: it plays an AWS whose clock differs from the host's.

Control endpoints (fault injection for tests), all JSON:
  POST /__proxy__/fault         {"action": "EnableMFADevice" | "*",
                                 "mode": "throttle|error500|drop|access_denied|expired_token",
                                 "times": 1, "match": {"UserName": "bob"}, "skip": 0}
        the next `times` matching requests (after letting `skip` of them
        through) fail that way without reaching moto. For JSON-protocol
        services (CloudTrail) the action is the X-Amz-Target's operation
        (e.g. "DescribeTrails"), and access_denied answers in JSON. `match` (optional) restricts to requests whose form parameters
        have those values, so parallel tests do not disturb one another.
        drop = close the connection without any answer (the endpoint going away);
        expired_token = 403 ExpiredToken, as for expired session credentials.
  POST /__proxy__/clock_offset  {"seconds": N}
  POST /__proxy__/reset         clears faults, the clock offset and the
                                enable log (remembered seeds are kept: they
                                mirror moto's state)
  GET  /__proxy__/enables       the enable log entries, a JSON array
  GET  /__proxy__/stats         {"requests": {action: count}} since start
  GET  /__proxy__/issued_seeds  [{"serial", "base32"}] of every seed issued
                                (for the tests' secret scans; memory only)
  ListMFADeviceTags is answered here from the tags each CreateVirtualMFADevice
  carried (moto does not implement it); a device made in moto directly has
  no tags, one moto does not list is NoSuchEntity.
  GET  /__proxy__/health        {"ok": true}

  What AWS answers and moto does not, for the audit (root credentials in
  GetAccountSummary, ListOrganizationsFeatures, GetMFADevice and FIDO
  devices, organization trails seen from member accounts, AssumeRole of a
  role that does not exist): tests/support/iam_proxy_accounts.py, with its
  control endpoints /__proxy__/root_credentials, /__proxy__/fido_device and
  /__proxy__/assume_role_checks.

Usage: iam_proxy.py --listen-port 0 --upstream http://127.0.0.1:MOTOPORT [--log FILE]
Prints "listening PORT" on stdout once ready. Binds 127.0.0.1 only.
Standard library only.
"""

import argparse
import base64
import email.utils
import hashlib
import hmac
import http.client
import http.server
import json
import socket
import struct
import sys
import threading
import time
import urllib.parse
import uuid

from iam_proxy_accounts import AccountsMixin, Facts

STEP = 30
MODES = ("throttle", "error500", "drop", "access_denied", "expired_token")
DIGITS = 6
WINDOW = 1  # steps either side of the proxy's current step
IAM_NS = "https://iam.amazonaws.com/doc/2010-05-08/"
HOP_BY_HOP = {
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
    "te", "trailers", "transfer-encoding", "upgrade", "content-length", "date",
    "server",
}


def totp(seed: bytes, step: int) -> str:
    mac = hmac.new(seed, struct.pack(">Q", step), hashlib.sha1).digest()
    off = mac[-1] & 0x0F
    value = struct.unpack(">I", mac[off:off + 4])[0] & 0x7FFFFFFF
    return str(value % (10 ** DIGITS)).zfill(DIGITS)


def decode_seed(text: str):
    """IAM's Base32StringSeed is base64 of the base32 text of the seed."""
    try:
        b32 = base64.b64decode(text, validate=True).decode("ascii")
        b32 = b32.strip().rstrip("=").upper()
        return base64.b32decode(b32 + "=" * (-len(b32) % 8))
    except Exception:
        return None


def xml_text(body: str, tag: str):
    start = body.find("<%s>" % tag)
    if start < 0:
        return None
    start += len(tag) + 2
    end = body.find("</%s>" % tag, start)
    return body[start:end] if end >= 0 else None


def request_tags(params):
    """The Tags.member.N.Key/Value form parameters of a request, in order."""
    out, n = [], 1
    while "Tags.member.%d.Key" % n in params:
        out.append((params["Tags.member.%d.Key" % n], params.get("Tags.member.%d.Value" % n, "")))
        n += 1
    return out


def xml_escape(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class State:
    def __init__(self, log_path):
        self.lock = threading.Lock()
        self.seeds = {}  # serial -> seed bytes; memory only
        self.issued = {}  # serial -> every seed ever issued (tests scan output for them)
        self.tags = {}  # serial -> [(key, value)]: moto has no ListMFADeviceTags
        self.last_step = {}  # serial -> last step accepted (a code is good once)
        self.counts = {}  # action -> requests seen (GET /__proxy__/stats)
        self.faults = []  # dicts: action, mode, times, match
        self.offset = 0.0
        self.enables = []
        self.log_path = log_path

    def now(self) -> float:
        with self.lock:
            return time.time() + self.offset

    def take_fault(self, action, params):
        with self.lock:
            for f in self.faults:
                if f["action"] not in ("*", action) or f["times"] <= 0:
                    continue
                if any(params.get(k) != v for k, v in f["match"].items()):
                    continue
                if f["skip"] > 0:
                    f["skip"] -= 1
                    continue
                f["times"] -= 1
                mode = f["mode"]
                self.faults = [g for g in self.faults if g["times"] > 0]
                return mode
        return None

    def record(self, entry):
        line = json.dumps(entry, sort_keys=True)
        with self.lock:
            self.enables.append(entry)
            if self.log_path:
                with open(self.log_path, "a", encoding="utf-8") as fh:
                    fh.write(line + "\n")


def check_codes(seed: bytes, code1: str, code2: str, now: float, last=None):
    """Returns (the accepted step T or None, why not). A pair whose first
    step is not after `last` (the last step accepted) reuses a code."""
    if not (len(code1) == DIGITS and code1.isdigit() and len(code2) == DIGITS and code2.isdigit()):
        return None, "codes are not two 6-digit codes"
    current = int(now // STEP)
    for t in range(current - WINDOW, current + WINDOW + 1):
        if hmac.compare_digest(totp(seed, t - 1), code1) and hmac.compare_digest(totp(seed, t), code2):
            if last is not None and t - 1 <= last:
                return None, "code already used: the pair's first step %d is not after the last accepted step %d" % (t - 1, last)
            return t, None
    return None, "codes are not two consecutive codes within +-%d step of now" % WINDOW


class Handler(AccountsMixin, http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "iam-proxy"
    sys_version = ""

    def setup(self):
        super().setup()
        # Headers and body go out in separate writes: without this, Nagle and
        # delayed ACKs add ~40 ms to every answer.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, fmt, *args):  # request lines only, and only with -v
        if self.server.verbose:
            sys.stderr.write("iam_proxy: " + (fmt % args) + "\n")

    # --- plumbing ---------------------------------------------------------

    def read_body(self) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def http_date(self) -> str:
        return email.utils.formatdate(self.server.state.now(), usegmt=True)

    def answer(self, status, body: bytes, ctype="text/xml", extra=()):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_response(self, code, message=None):
        # The Date header carries the (possibly offset) proxy clock.
        self.log_request(code)
        self.send_response_only(code, message)
        self.send_header("Server", self.version_string())
        self.send_header("Date", self.http_date())

    def iam_error(self, status, code, message, sender=True):
        rid = str(uuid.uuid4())
        body = (
            '<ErrorResponse xmlns="%s"><Error><Type>%s</Type><Code>%s</Code>'
            "<Message>%s</Message></Error><RequestId>%s</RequestId></ErrorResponse>"
            % (IAM_NS, "Sender" if sender else "Receiver", code, xml_escape(message), rid)
        ).encode()
        self.answer(status, body, extra=[("x-amzn-RequestId", rid)])

    def json_error(self, status, code, message):
        """An error as JSON-protocol services (CloudTrail) answer it."""
        body = json.dumps({"__type": code, "message": message}).encode()
        self.answer(status, body, ctype="application/x-amz-json-1.1",
                    extra=[("x-amzn-RequestId", str(uuid.uuid4())), ("x-amzn-ErrorType", code)])

    def json_answer(self, status, obj):
        self.answer(status, json.dumps(obj).encode(), ctype="application/json")

    # --- dispatch ---------------------------------------------------------

    def do_GET(self):
        if self.path.startswith("/__proxy__/"):
            return self.control(None)
        return self.forward(b"")

    def do_POST(self):
        body = self.read_body()
        if self.path.startswith("/__proxy__/"):
            return self.control(body)
        return self.forward(body)

    def control(self, body):
        st = self.server.state
        path = self.path.split("?", 1)[0]
        try:
            req = json.loads(body.decode() or "{}") if body is not None else {}
        except ValueError:
            return self.json_answer(400, {"error": "body is not JSON"})
        if path == "/__proxy__/health":
            return self.json_answer(200, {"ok": True})
        if body is not None:
            try:
                done = self.server.facts.control(path, req)
            except (KeyError, TypeError, ValueError) as e:
                return self.json_answer(400, {"error": "bad request: %s" % e})
            if done is not None:
                return self.json_answer(200, done)
        if path == "/__proxy__/enables" and body is None:
            with st.lock:
                entries = list(st.enables)
            return self.json_answer(200, entries)
        if path == "/__proxy__/stats" and body is None:
            with st.lock:
                counts = dict(st.counts)
            return self.json_answer(200, {"requests": counts})
        if path == "/__proxy__/issued_seeds" and body is None:
            # Test tooling only (127.0.0.1): every seed issued through this
            # proxy, deleted devices included, so that a test can scan what
            # mfakey printed and wrote for each of them.
            with st.lock:
                issued = [{"serial": k, "base32": base64.b32encode(v).decode().rstrip("=")}
                          for k, v in st.issued.items()]
            return self.json_answer(200, issued)
        if path == "/__proxy__/fault" and body is not None:
            mode = req.get("mode")
            if mode not in MODES:
                return self.json_answer(400, {"error": "mode must be one of " + "|".join(MODES)})
            fault = {
                "action": str(req.get("action", "*")),
                "mode": mode,
                "times": int(req.get("times", 1)),
                "match": {str(k): str(v) for k, v in (req.get("match") or {}).items()},
                "skip": int(req.get("skip", 0)),
            }
            with st.lock:
                st.faults.append(fault)
            return self.json_answer(200, {"ok": True})
        if path == "/__proxy__/clock_offset" and body is not None:
            with st.lock:
                st.offset = float(req.get("seconds", 0))
            return self.json_answer(200, {"ok": True})
        if path == "/__proxy__/reset" and body is not None:
            with st.lock:
                st.faults = []
                st.offset = 0.0
                st.enables = []
            return self.json_answer(200, {"ok": True})
        return self.json_answer(404, {"error": "unknown control endpoint"})

    def forward(self, body: bytes):
        st = self.server.state
        params = {k: v[0] for k, v in urllib.parse.parse_qs(body.decode("utf-8", "replace")).items()}
        action = params.get("Action", "")
        # JSON-protocol services (CloudTrail) name the action in X-Amz-Target.
        target = self.headers.get("X-Amz-Target", "")
        if target:
            action, params = target.rsplit(".", 1)[-1], {}
        with st.lock:
            st.counts[action] = st.counts.get(action, 0) + 1

        mode = st.take_fault(action, params)
        if mode == "drop":
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        if mode == "throttle":
            return self.iam_error(400, "Throttling", "Rate exceeded")
        if mode == "error500":
            return self.iam_error(500, "ServiceFailure", "The request processing has failed because of an unknown error, exception or failure.", sender=False)
        if mode == "expired_token":
            return self.iam_error(403, "ExpiredToken", "The security token included in the request is expired")
        if mode == "access_denied" and target:
            return self.json_error(403, "AccessDeniedException",
                                   "User is not authorized to perform: %s" % action)
        if mode == "access_denied":
            return self.iam_error(
                403, "AccessDenied",
                "User: arn:aws:iam::123456789012:user/moto is not authorized to perform: iam:%s "
                "because no identity-based policy allows the iam:%s action" % (action, action))

        if action == "ListMFADeviceTags":
            return self.list_tags(params.get("SerialNumber", ""))

        if self.accounts_answer(action, params, target, body):
            return

        if action in ("EnableMFADevice", "ResyncMFADevice"):
            if not self.check_enable(action, params):
                return
            if action == "ResyncMFADevice":
                rid = str(uuid.uuid4())
                body_out = ('<ResyncMFADeviceResponse xmlns="%s"><ResponseMetadata><RequestId>%s'
                            "</RequestId></ResponseMetadata></ResyncMFADeviceResponse>" % (IAM_NS, rid)).encode()
                return self.answer(200, body_out)

        status, headers, data = self.upstream(body)
        if status is None:
            return self.iam_error(502, "ServiceUnavailable", "upstream moto is not reachable", sender=False)

        if action == "CreateVirtualMFADevice" and status == 200:
            text = data.decode("utf-8", "replace")
            serial, seed = xml_text(text, "SerialNumber"), xml_text(text, "Base32StringSeed")
            raw = decode_seed(seed) if seed else None
            if serial and raw:
                with st.lock:
                    st.seeds[serial] = raw
                    st.issued[serial] = raw
                    st.tags[serial] = request_tags(params)
        elif action == "DeleteVirtualMFADevice" and status == 200:
            with st.lock:
                st.seeds.pop(params.get("SerialNumber"), None)
                st.tags.pop(params.get("SerialNumber"), None)
                st.last_step.pop(params.get("SerialNumber"), None)
        elif action == "DeactivateMFADevice" and status == 200:
            st.record({"action": action, "serial": params.get("SerialNumber", ""),
                       "user": params.get("UserName", ""), "accepted": True, "step": None,
                       "reason": None, "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(st.now()))})

        extra = [(k, v) for k, v in headers if k.lower() not in HOP_BY_HOP and k.lower() != "content-type"]
        ctype = next((v for k, v in headers if k.lower() == "content-type"), "text/xml")
        self.answer(status, data, ctype=ctype, extra=extra)

    def list_tags(self, serial):
        """ListMFADeviceTags, answered here from the tags CreateVirtualMFADevice carried."""
        st = self.server.state
        with st.lock:
            tags = st.tags.get(serial)
        if tags is None and self.exists_upstream(serial):
            # Made in moto around the proxy (a test's fixture): no tags we know of.
            tags = []
        if tags is None:
            return self.iam_error(404, "NoSuchEntity", "MFA device with serial number %s doesn't exist." % serial)
        members = "".join("<member><Key>%s</Key><Value>%s</Value></member>" % (xml_escape(k), xml_escape(v))
                          for k, v in tags)
        body_out = ('<ListMFADeviceTagsResponse xmlns="%s"><ListMFADeviceTagsResult><Tags>%s</Tags>'
                    "<IsTruncated>false</IsTruncated></ListMFADeviceTagsResult><ResponseMetadata>"
                    "<RequestId>%s</RequestId></ResponseMetadata></ListMFADeviceTagsResponse>"
                    % (IAM_NS, members, uuid.uuid4())).encode()
        return self.answer(200, body_out)

    def exists_upstream(self, serial) -> bool:
        """Whether moto lists a virtual MFA device with this serial."""
        body = urllib.parse.urlencode(
            {"Action": "ListVirtualMFADevices", "Version": "2010-05-08", "MaxItems": "1000"}).encode()
        status, _, data = self.upstream(body)
        wanted = "<SerialNumber>%s</SerialNumber>" % xml_escape(serial)
        return status == 200 and wanted in data.decode("utf-8", "replace")

    def check_enable(self, action, params) -> bool:
        """True when the request may proceed; otherwise the answer was sent."""
        st = self.server.state
        serial, user = params.get("SerialNumber", ""), params.get("UserName", "")
        now = st.now()
        with st.lock:
            seed = st.seeds.get(serial)
            last = st.last_step.get(serial)
        entry = {"action": action, "serial": serial, "user": user, "accepted": False,
                 "step": None, "reason": None,
                 "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))}
        if seed is None:
            entry["reason"] = "unknown serial"
            st.record(entry)
            self.iam_error(404, "NoSuchEntity", "VirtualMFADevice with serial number %s doesn't exist." % serial)
            return False
        if action == "ResyncMFADevice" and not self.enabled_for(serial, user):
            entry["reason"] = "not enabled for the user"
            st.record(entry)
            self.iam_error(404, "NoSuchEntity", "MFA device %s is not enabled for user %s." % (serial, user))
            return False
        step, why = check_codes(seed, params.get("AuthenticationCode1", ""),
                                params.get("AuthenticationCode2", ""), now, last)
        if step is None:
            entry["reason"] = why
            st.record(entry)
            self.iam_error(403, "InvalidAuthenticationCode", "Authentication code for device is not valid.")
            return False
        with st.lock:
            st.last_step[serial] = step
        entry["accepted"], entry["step"] = True, step
        st.record(entry)
        return True

    def enabled_for(self, serial, user) -> bool:
        """Whether moto lists the device among the user's MFA devices."""
        body = urllib.parse.urlencode(
            {"Action": "ListMFADevices", "Version": "2010-05-08", "UserName": user}).encode()
        status, _, data = self.upstream(body)
        wanted = "<SerialNumber>%s</SerialNumber>" % xml_escape(serial)
        return status == 200 and wanted in data.decode("utf-8", "replace")

    def upstream(self, body: bytes):
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        return self.upstream_raw(self.command, self.path, headers, body)

    def upstream_raw(self, method, path, headers, body: bytes):
        up = self.server.upstream
        conn = http.client.HTTPConnection(up.hostname, up.port or 80, timeout=30)
        headers = dict(headers)
        headers["Content-Length"] = str(len(body))
        try:
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            return resp.status, resp.getheaders(), resp.read()
        except OSError:
            return None, [], b""
        finally:
            conn.close()


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--listen-port", type=int, default=0)
    ap.add_argument("--upstream", required=True, help="moto server URL, http://127.0.0.1:PORT")
    ap.add_argument("--log", help="append one JSON line per EnableMFADevice/ResyncMFADevice")
    ap.add_argument("-v", "--verbose", action="store_true", help="log request lines to stderr")
    args = ap.parse_args()

    upstream = urllib.parse.urlsplit(args.upstream)
    if upstream.scheme != "http" or not upstream.hostname:
        ap.error("--upstream must be http://HOST:PORT")
    server = Server(("127.0.0.1", args.listen_port), Handler)
    server.state = State(args.log)
    server.facts = Facts()
    server.upstream = upstream
    server.verbose = args.verbose
    print("listening %d" % server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
