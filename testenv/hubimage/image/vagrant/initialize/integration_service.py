"""The JupyterHub-openBIS integration service on Debian's tornado.

It keeps the contract of PyPI's jupyter-openbis-integration-service, which
the ELN's JupyterUtil.js calls from the user's browser (cross-origin):

  POST /?token=SESSION&folder=F&filename=N.ipynb&test=True
  POST /?token=SESSION&folder=F&filename=N.ipynb&test=False   body: notebook JSON

Both answer {"fileName": NAME, "path": PATH}; NAME is N.ipynb or, when that
file exists, "N 2.ipynb", "N 3.ipynb", ... (as the original does). test=True
only answers; test=False writes /home/USER/F/NAME owned by the user. A bad
token is 401 with a JSON message. Unlike the original, folder and filename
must be plain names (no path traversal), the token and parameters are read
from the query string only, and CORS answers the caller's Origin.
"""

import asyncio
import json
import logging
import os
import stat

import tornado.ioloop
import tornado.web

import openbis_session

log = logging.getLogger("integration_service")


def plain_name(s):
    return bool(s) and "/" not in s and "\\" not in s and "\0" not in s and ".." not in s and not s.startswith(".")


class Notebook(tornado.web.RequestHandler):
    def set_default_headers(self):
        origin = self.request.headers.get("Origin")
        if origin:
            self.set_header("Access-Control-Allow-Origin", origin)
            self.set_header("Vary", "Origin")
        self.set_header("Access-Control-Allow-Methods", "POST, OPTIONS")
        self.set_header("Access-Control-Allow-Headers", "x-requested-with, content-type")
        self.set_header("Access-Control-Max-Age", "600")
        self.set_header("Content-Type", "application/json")

    def fail(self, status, message):
        self.set_status(status)
        self.finish(json.dumps({"message": message}))

    def write_error(self, status_code, **kwargs):
        self.finish(json.dumps({"message": self._reason}))

    def options(self, *_):
        self.set_status(204)
        self.finish()

    def get(self, *_):
        self.fail(405, "use POST with the arguments token, folder and filename; the body is the notebook")

    async def post(self, *_):
        args = {}
        for name in ("token", "folder", "filename"):
            args[name] = self.get_query_argument(name, "")
            if not args[name]:
                return self.fail(400, "missing argument %s" % name)
        test = self.get_query_argument("test", "False").lower() == "true"
        folder, filename = args["folder"], args["filename"]
        if not plain_name(folder):
            return self.fail(400, "folder must be a plain directory name")
        if not plain_name(filename) or not filename.endswith(".ipynb"):
            return self.fail(400, "filename must be a plain name ending in .ipynb")

        loop = asyncio.get_running_loop()
        try:
            user = await loop.run_in_executor(None, openbis_session.session_user, args["token"])
        except openbis_session.SessionError as e:
            log.info("refused token: %s", e)
            return self.fail(401, "token is invalid")
        except OSError as e:
            log.error("openBIS unreachable: %s", e)
            return self.fail(502, "cannot check the token with openBIS")
        try:
            pw = await loop.run_in_executor(None, openbis_session.ensure_user, user)
        except (OSError, ValueError) as e:
            log.error("user %s: %s", user, e)
            return self.fail(500, "user %s cannot be created on the host system" % user)

        directory = os.path.join(pw.pw_dir, folder)
        try:
            st = os.lstat(directory)
            # Never follow a user's symlink out of their home.
            if not stat.S_ISDIR(st.st_mode):
                return self.fail(409, "%s is not a directory" % folder)
        except FileNotFoundError:
            pass
        base, ext = filename[: -len(".ipynb")], ".ipynb"
        name, i = filename, 1
        while os.path.lexists(os.path.join(directory, name)):
            i += 1
            name = "%s %d%s" % (base, i, ext)
        path = os.path.join(directory, name)
        answer = json.dumps({"fileName": name, "path": path})
        if test:
            return self.finish(answer)
        try:
            if not os.path.isdir(directory):
                os.mkdir(directory, 0o755)
                os.chown(directory, pw.pw_uid, pw.pw_gid)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
            with os.fdopen(fd, "wb") as f:
                f.write(self.request.body)
            os.chown(path, pw.pw_uid, pw.pw_gid)
        except OSError as e:
            log.error("write %s: %s", path, e)
            return self.fail(500, "unable to write file %s" % name)
        log.info("wrote %s for %s", path, user)
        self.finish(answer)


def main():
    logging.basicConfig(level=logging.INFO, format="[integration-service %(asctime)s] %(message)s")
    port = int(os.environ.get("JUPYTERHUB_INTEGRATION_SERVICE_PORT", "8002"))
    app = tornado.web.Application([(r"/(.*)", Notebook)])
    app.listen(
        port,
        address="0.0.0.0",
        ssl_options={"certfile": os.environ["CERTIFICATE_CRT"], "keyfile": os.environ["CERTIFICATE_KEY"]},
    )
    log.info("listening on %d (HTTPS), openBIS at %s", port, openbis_session.openbis_url())
    tornado.ioloop.IOLoop.current().start()


if __name__ == "__main__":
    main()
