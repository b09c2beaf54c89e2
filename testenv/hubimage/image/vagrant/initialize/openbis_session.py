"""openBIS session checks and system users, shared by the hub's
authenticator and the integration service.

A session token is good when openBIS's V3 API says isSessionActive and
names its user in getSessionInformation. TLS to openBIS is verified
against the system trust store (the image bakes the test CA into it).
"""

import json
import os
import pwd
import re
import ssl
import subprocess
import threading
import urllib.request

API_PATH = "/openbis/openbis/rmi-application-server-v3.json"

# What becomes a system user: Debian's adduser default NAME_REGEX, bounded.
USER_RE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
# openBIS tokens look like alice-251201120000000xABCDEF.
TOKEN_RE = re.compile(r"^[A-Za-z0-9_.@-]{1,200}$")

_user_lock = threading.Lock()


class SessionError(Exception):
    """The token is not a live openBIS session (or openBIS said no)."""


def openbis_url():
    return os.environ["OPENBIS_URL"].rstrip("/")


def _call(method, params, timeout=10):
    body = json.dumps(
        {"jsonrpc": "2.0", "id": "1", "method": method, "params": params}
    ).encode()
    req = urllib.request.Request(
        openbis_url() + API_PATH,
        data=body,
        headers={"Content-Type": "application/json"},
    )
    ctx = ssl.create_default_context()
    with urllib.request.urlopen(req, timeout=timeout, context=ctx) as r:
        answer = json.load(r)
    if answer.get("error"):
        raise SessionError("openBIS %s: %s" % (method, answer["error"]))
    return answer.get("result")


def session_user(token):
    """Return the system user name of the openBIS session token, or raise
    SessionError. Network and TLS errors propagate as OSError."""
    if not token or not TOKEN_RE.match(token):
        raise SessionError("malformed token")
    if _call("isSessionActive", [token]) is not True:
        raise SessionError("session is not active")
    info = _call("getSessionInformation", [token]) or {}
    name = str(info.get("userName") or "").lower()
    if not USER_RE.match(name):
        raise SessionError("openBIS user name %r cannot be a system user" % name)
    return name


def ensure_user(name):
    """Create the system user name unless it exists, as the hub's
    LocalAuthenticator would, and return its pwd entry. A home left by an
    earlier container (a bind-mounted /home) keeps its owner's uid."""
    if not USER_RE.match(name):
        raise ValueError("bad user name %r" % name)
    with _user_lock:
        try:
            return pwd.getpwnam(name)
        except KeyError:
            pass
        cmd = ["adduser", "-q", "--gecos", "", "--disabled-password"]
        home = os.path.join("/home", name)
        try:
            st = os.lstat(home)
        except FileNotFoundError:
            st = None
        if st is not None and st.st_uid >= 1000:
            try:
                pwd.getpwuid(st.st_uid)
            except KeyError:
                cmd += ["--uid", str(st.st_uid)]
        r = subprocess.run(cmd + [name], capture_output=True, text=True)
        try:
            pw = pwd.getpwnam(name)
        except KeyError:
            raise OSError("adduser %s failed: %s" % (name, r.stderr.strip()))
        # adduser leaves an existing home as it was.
        os.chown(pw.pw_dir, pw.pw_uid, pw.pw_gid)
        return pw
