"""What AWS answers and moto does not, for the audit's tests: the part of
tests/support/iam_proxy.py that plays accounts as they really look.

moto keeps one state per account (the account of the access key that signs
a request; STS AssumeRole into arn:aws:iam::<id>:role/... hands out keys of
<id>). This module finds a request's account by asking moto
(GetCallerIdentity with the caller's own Authorization header), and reaches
another account's state with keys it assumes there (moto does not check
signatures or trust policies).

Answered here, as AWS documents them:
* GetAccountSummary: moto lacks AccountPasswordPresent; it is added (1, as
  for an account whose root has a password). POST /__proxy__/root_credentials
  {"account": ID, "AccountPasswordPresent": 0, "AccountAccessKeysPresent": 1,
  "AccountSigningCertificatesPresent": 1, "AccountMFAEnabled": 1} sets any of
  these for one account (AWS: the root's credentials, which no API sets).
* IAM ListOrganizationsFeatures, EnableOrganizationsRootCredentialsManagement,
  EnableOrganizationsRootSessions (moto has none): answered from the
  caller's organization in moto (DescribeOrganization): no organization ->
  OrganizationNotFoundException; not the management account ->
  AccountNotManagementOrDelegatedAdministratorException; not all features ->
  OrganizationNotInAllFeaturesModeException; trusted access for
  iam.amazonaws.com not enabled -> ServiceAccessNotEnabledException. The
  enabled features are kept per organization, in memory. Organizations'
  EnableAWSServiceAccess for iam.amazonaws.com (moto does not know IAM as
  a trusted service) is answered here too, from the management account.
* GetMFADevice (FIDO devices only, with their Certifications) and FIDO
  devices in ListMFADevices: AWS registers security keys and passkeys only
  in its console, so moto cannot make one. POST /__proxy__/fido_device
  {"account", "user", "serial": "arn:aws:iam::ID:u2f/user/NAME/...",
  "certifications": {"FIDO": "L1"}} registers one for a user.
* CloudTrail organization trails: DescribeTrails in a member account also
  lists the organization trails of its management account (moto keeps them
  in the management account only); a per-trail call (GetTrailStatus,
  GetEventSelectors, GetTrail, UpdateTrail, StartLogging, PutEventSelectors)
  naming another account's trail ARN answers 400
  CloudTrailARNInvalidException, as CloudTrail answers members.
* STS AssumeRole: moto grants any role, existing or not. For the accounts
  named by POST /__proxy__/assume_role_checks {"accounts": [IDS]}, the role
  must exist in the account (as in AWS), else 403 AccessDenied.
"""

import json
import re
import threading
import urllib.parse
import uuid

IAM_NS = "https://iam.amazonaws.com/doc/2010-05-08/"
STS_NS = "https://sts.amazonaws.com/doc/2011-06-15/"
ORGS = "AWSOrganizationsV20161128."
CT = "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101."
ROOT_KEYS = ("AccountMFAEnabled", "AccountPasswordPresent", "AccountAccessKeysPresent",
             "AccountSigningCertificatesPresent")
PER_TRAIL = {"GetTrailStatus": "Name", "GetTrail": "Name", "UpdateTrail": "Name", "StartLogging": "Name",
             "GetEventSelectors": "TrailName", "PutEventSelectors": "TrailName"}


def esc(s):
    return str(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class Facts:
    """The accounts' state moto lacks, in memory."""

    def __init__(self):
        self.lock = threading.Lock()
        self.callers = {}  # access key id -> account
        self.keys = {}  # account -> access key id assumed there by the proxy
        self.root = {}  # account -> {summary key: 0|1}
        self.fido = {}  # (account, user) -> [{"serial", "certifications", "enabled"}]
        self.features = {}  # organization id -> [feature]
        self.iam_trusted = set()  # organization ids with trusted access for IAM
        self.assume_checked = set()  # accounts whose roles must exist

    def control(self, path, req):
        """A control endpoint of this module, or None."""
        with self.lock:
            if path == "/__proxy__/root_credentials":
                acct = str(req["account"])
                self.root.setdefault(acct, {}).update(
                    {k: int(v) for k, v in req.items() if k in ROOT_KEYS})
                return {"ok": True}
            if path == "/__proxy__/fido_device":
                key = (str(req["account"]), str(req["user"]))
                self.fido.setdefault(key, []).append({
                    "serial": str(req["serial"]),
                    "certifications": {str(k): str(v) for k, v in (req.get("certifications") or {}).items()},
                    "enabled": "2026-01-01T00:00:00Z",
                })
                return {"ok": True}
            if path == "/__proxy__/assume_role_checks":
                self.assume_checked.update(str(a) for a in req.get("accounts", []))
                return {"ok": True}
        return None


class AccountsMixin:
    """Handler methods; the handler has self.server.facts and upstream()."""

    # --- reaching moto as an account ---------------------------------------

    def _auth_for(self, akid, service, region="us-east-1"):
        return ("AWS4-HMAC-SHA256 Credential=%s/20260101/%s/%s/aws4_request, "
                "SignedHeaders=host;x-amz-date, Signature=%s" % (akid, region, service, "0" * 64))

    def _caller_key(self):
        m = re.search(r"Credential=([^/]+)/", self.headers.get("Authorization", ""))
        return m.group(1) if m else None

    def _region(self):
        m = re.search(r"Credential=[^/]+/\d+/([^/]+)/", self.headers.get("Authorization", ""))
        return m.group(1) if m else "us-east-1"

    def _call(self, akid, service, body, target=None, region="us-east-1"):
        """One request to moto signed (in name) with `akid`: (status, text)."""
        headers = {"Authorization": self._auth_for(akid, service, region),
                   "X-Amz-Date": "20260101T000000Z"}
        if target:
            headers["X-Amz-Target"] = target
            headers["Content-Type"] = "application/x-amz-json-1.1"
            data = json.dumps(body).encode()
        else:
            headers["Content-Type"] = "application/x-www-form-urlencoded; charset=utf-8"
            data = urllib.parse.urlencode(body).encode()
        status, _, out = self.upstream_raw("POST", "/", headers, data)
        return status, out.decode("utf-8", "replace")

    def caller_account(self):
        facts = self.server.facts
        akid = self._caller_key()
        if not akid:
            return None
        with facts.lock:
            if akid in facts.callers:
                return facts.callers[akid]
        status, text = self._call(akid, "sts", {"Action": "GetCallerIdentity", "Version": "2011-06-15"})
        m = re.search(r"<Account>(\d+)</Account>", text)
        if status != 200 or not m:
            return None
        with facts.lock:
            facts.callers[akid] = m.group(1)
        return m.group(1)

    def key_in(self, account):
        """An access key of `account` (assumed once, kept)."""
        facts = self.server.facts
        with facts.lock:
            if account in facts.keys:
                return facts.keys[account]
        status, text = self._call(self._caller_key() or "testing", "sts", {
            "Action": "AssumeRole", "Version": "2011-06-15",
            "RoleArn": "arn:aws:iam::%s:role/mfakey-test-proxy" % account,
            "RoleSessionName": "iam-proxy"})
        m = re.search(r"<AccessKeyId>([^<]+)</AccessKeyId>", text)
        if status != 200 or not m:
            return None
        with facts.lock:
            facts.keys[account] = m.group(1)
        return m.group(1)

    def organization_of(self, akid):
        """DescribeOrganization as `akid`: the organization dict, or None."""
        status, text = self._call(akid, "organizations", {}, ORGS + "DescribeOrganization")
        if status != 200:
            return None
        return json.loads(text).get("Organization")

    # --- answers -------------------------------------------------------------

    def accounts_answer(self, action, params, target, body):
        """Answers `action` here when this module plays it; True if it did."""
        if action == "GetAccountSummary" and not target:
            return self.account_summary(body)
        if action in ("ListOrganizationsFeatures", "EnableOrganizationsRootCredentialsManagement",
                      "EnableOrganizationsRootSessions") and not target:
            return self.root_features(action)
        if action == "GetMFADevice" and not target:
            return self.get_mfa_device(params)
        if action == "ListMFADevices" and not target:
            return self.list_mfa_devices(params, body)
        if action == "AssumeRole" and not target:
            return self.assume_role(params)
        if target == ORGS + "EnableAWSServiceAccess":
            return self.trust_iam(body)
        cloudtrail = "CloudTrail_20131101." in target
        if cloudtrail and action == "DescribeTrails":
            return self.describe_trails(body)
        if cloudtrail and action in PER_TRAIL:
            return self.foreign_trail(action, body)
        return False

    def account_summary(self, body):
        status, headers, data = self.upstream(body)
        if status != 200:
            return False
        text = data.decode("utf-8", "replace")
        acct = self.caller_account()
        with self.server.facts.lock:
            wanted = {"AccountPasswordPresent": 1}
            wanted.update(self.server.facts.root.get(acct, {}))
        for key, value in wanted.items():
            entry = "<entry><key>%s</key><value>%d</value></entry>" % (key, value)
            pattern = r"<entry>\s*<key>%s</key>\s*<value>\d+</value>\s*</entry>" % key
            if re.search(pattern, text):
                text = re.sub(pattern, entry, text)
            else:
                text = text.replace("</SummaryMap>", entry + "</SummaryMap>")
        self.answer(200, text.encode())
        return True

    def root_features(self, action):
        akid = self._caller_key()
        acct = self.caller_account()
        org = self.organization_of(akid) if akid else None
        if org is None:
            return self.iam_error(400, "OrganizationNotFoundException",
                                  "No organization is associated with your account.") or True
        if org.get("MasterAccountId") != acct:
            return self.iam_error(400, "AccountNotManagementOrDelegatedAdministratorException",
                                  "The account is not the management account or delegated administrator.") or True
        if org.get("FeatureSet") != "ALL":
            return self.iam_error(400, "OrganizationNotInAllFeaturesModeException",
                                  "The organization does not have all features enabled.") or True
        with self.server.facts.lock:
            trusted = org["Id"] in self.server.facts.iam_trusted
        if not trusted:
            return self.iam_error(400, "ServiceAccessNotEnabledException",
                                  "Trusted access is not enabled for IAM in AWS Organizations.") or True
        facts = self.server.facts
        with facts.lock:
            enabled = facts.features.setdefault(org["Id"], [])
            feature = {"EnableOrganizationsRootCredentialsManagement": "RootCredentialsManagement",
                       "EnableOrganizationsRootSessions": "RootSessions"}.get(action)
            if feature and feature not in enabled:
                enabled.append(feature)
            members = "".join("<member>%s</member>" % f for f in enabled)
        out = ('<%sResponse xmlns="%s"><%sResult><OrganizationId>%s</OrganizationId>'
               "<EnabledFeatures>%s</EnabledFeatures></%sResult><ResponseMetadata><RequestId>%s</RequestId>"
               "</ResponseMetadata></%sResponse>" % (action, IAM_NS, action, org["Id"], members, action,
                                                     uuid.uuid4(), action))
        self.answer(200, out.encode())
        return True

    def trust_iam(self, body):
        try:
            principal = json.loads(body or b"{}").get("ServicePrincipal")
        except ValueError:
            return False
        if principal != "iam.amazonaws.com":
            return False
        akid = self._caller_key()
        org = self.organization_of(akid) if akid else None
        if org is None or org.get("MasterAccountId") != self.caller_account():
            self.json_error(400, "AccessDeniedException",
                            "You don't have permissions to access this resource.")
            return True
        with self.server.facts.lock:
            self.server.facts.iam_trusted.add(org["Id"])
        self.answer(200, b"{}", ctype="application/x-amz-json-1.1")
        return True

    def _fido_of(self, acct, user):
        with self.server.facts.lock:
            return list(self.server.facts.fido.get((acct, user), []))

    def get_mfa_device(self, params):
        acct, serial = self.caller_account(), params.get("SerialNumber", "")
        user = params.get("UserName", "")
        device = next((d for d in self._fido_of(acct, user) if d["serial"] == serial), None)
        if device is None:
            return self.iam_error(404, "NoSuchEntity",
                                  "MFA device with serial number %s not found." % serial) or True
        certs = "".join("<entry><key>%s</key><value>%s</value></entry>" % (esc(k), esc(v))
                        for k, v in device["certifications"].items())
        out = ('<GetMFADeviceResponse xmlns="%s"><GetMFADeviceResult><UserName>%s</UserName>'
               "<SerialNumber>%s</SerialNumber><EnableDate>%s</EnableDate><Certifications>%s</Certifications>"
               "</GetMFADeviceResult><ResponseMetadata><RequestId>%s</RequestId></ResponseMetadata>"
               "</GetMFADeviceResponse>" % (IAM_NS, esc(user), esc(serial), device["enabled"], certs, uuid.uuid4()))
        self.answer(200, out.encode())
        return True

    def list_mfa_devices(self, params, body):
        user = params.get("UserName", "")
        fido = self._fido_of(self.caller_account(), user) if user else []
        if not fido:
            return False
        status, headers, data = self.upstream(body)
        if status != 200:
            return False
        text = data.decode("utf-8", "replace")
        members = "".join("<member><UserName>%s</UserName><SerialNumber>%s</SerialNumber>"
                          "<EnableDate>%s</EnableDate></member>" % (esc(user), esc(d["serial"]), d["enabled"])
                          for d in fido)
        if "<MFADevices/>" in text:
            text = text.replace("<MFADevices/>", "<MFADevices>%s</MFADevices>" % members)
        else:
            text = text.replace("</MFADevices>", members + "</MFADevices>", 1)
        self.answer(200, text.encode())
        return True

    def assume_role(self, params):
        arn = params.get("RoleArn", "")
        m = re.match(r"arn:[^:]+:iam::(\d{12}):role/(?:.*/)?([^/]+)$", arn)
        with self.server.facts.lock:
            checked = bool(m) and m.group(1) in self.server.facts.assume_checked
        if not checked:
            return False
        key = self.key_in(m.group(1))
        status, _ = self._call(key, "iam", {"Action": "GetRole", "Version": "2010-05-08",
                                            "RoleName": m.group(2)}) if key else (404, "")
        if status == 200:
            return False
        rid = str(uuid.uuid4())
        out = ('<ErrorResponse xmlns="%s"><Error><Type>Sender</Type><Code>AccessDenied</Code>'
               "<Message>User: arn:aws:sts::%s:assumed-role/caller is not authorized to perform: "
               "sts:AssumeRole on resource: %s</Message></Error><RequestId>%s</RequestId></ErrorResponse>"
               % (STS_NS, self.caller_account() or "", esc(arn), rid))
        self.answer(403, out.encode(), extra=[("x-amzn-RequestId", rid)])
        return True

    def describe_trails(self, body):
        status, headers, data = self.upstream(body)
        if status != 200:
            return False
        listing = json.loads(data.decode("utf-8", "replace"))
        acct = self.caller_account()
        org = self.organization_of(self._caller_key())
        owner = org.get("MasterAccountId") if org else None
        if owner and owner != acct:
            key = self.key_in(owner)
            s, text = self._call(key, "cloudtrail", json.loads(body or b"{}"),
                                 CT + "DescribeTrails", self._region()) if key else (0, "")
            known = {t.get("TrailARN") for t in listing.get("trailList", [])}
            if s == 200:
                for t in json.loads(text).get("trailList", []):
                    if t.get("IsOrganizationTrail") and t.get("TrailARN") not in known:
                        listing.setdefault("trailList", []).append(t)
        self.answer(200, json.dumps(listing).encode(), ctype="application/x-amz-json-1.1")
        return True

    def foreign_trail(self, action, body):
        try:
            name = json.loads(body or b"{}").get(PER_TRAIL[action], "")
        except ValueError:
            return False
        m = re.match(r"arn:[^:]+:cloudtrail:[^:]*:(\d{12}):trail/", name or "")
        acct = self.caller_account() if m else None
        if not m or acct is None or m.group(1) == acct:
            return False
        self.json_error(400, "CloudTrailARNInvalidException",
                        "AccountID in ARN is wrong, you can only access resources with AccountID %s" % acct)
        return True
