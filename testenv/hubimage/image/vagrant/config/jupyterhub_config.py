# JupyterHub configuration of the JupyterHub-for-openBIS stand-in image.
# Ports and certificates come from the guide's docker run environment:
# the hub on JUPYTERHUB_PORT (8000, HTTPS), its API on 8081 and the proxy
# API on 8001 (published to the host's loopback only by docker run).
import asyncio
import os
import sys
import time

sys.path.insert(0, "/vagrant/initialize")

from jupyterhub.auth import LocalAuthenticator  # noqa: E402
from jupyterhub.handlers.login import LoginHandler  # noqa: E402
from tornado import web  # noqa: E402

import openbis_session  # noqa: E402

c = get_config()  # noqa: F821

c.JupyterHub.ip = "0.0.0.0"
c.JupyterHub.port = int(os.environ.get("JUPYTERHUB_PORT", "8000"))
c.JupyterHub.ssl_key = os.environ["CERTIFICATE_KEY"]
c.JupyterHub.ssl_cert = os.environ["CERTIFICATE_CRT"]
c.JupyterHub.hub_bind_url = "http://0.0.0.0:8081"
c.JupyterHub.hub_connect_url = "http://127.0.0.1:8081"
c.ConfigurableHTTPProxy.api_url = "http://0.0.0.0:8001"
c.ConfigurableHTTPProxy.command = ["configurable-http-proxy"]
c.JupyterHub.db_url = "sqlite:////var/lib/jupyterhub/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = "/var/lib/jupyterhub/jupyterhub_cookie_secret"

c.JupyterHub.spawner_class = "jupyterhub.spawner.LocalProcessSpawner"
c.Spawner.cmd = ["jupyterhub-singleuser"]
c.Spawner.default_url = "/tree"
c.Spawner.env_keep = ["PATH", "LANG", "LC_ALL", "OPENBIS_URL"]
# Browsers without JavaScript-driven spawn pages still land on the server.
c.JupyterHub.implicit_spawn_seconds = 1

SPAWN_WAIT = 60


class OpenBISLoginHandler(LoginHandler):
    """/hub/login?token=SESSION&next=/user/USER/notebooks/F/N.ipynb, as the
    ELN opens it: log in with the token (also over an older login cookie),
    start the user's server and wait for it, then follow next."""

    async def get(self):
        if not self.get_argument("token", ""):
            return await super().get()
        user = await self.login_user()
        if user is None:
            raise web.HTTPError(403, "openBIS session token refused")
        spawner = user.spawner
        if not spawner.active:
            spawn = asyncio.ensure_future(self.spawn_single_user(user))
        else:
            spawn = None
        deadline = time.monotonic() + SPAWN_WAIT
        while not spawner.ready and time.monotonic() < deadline:
            if spawn is not None and spawn.done() and spawn.exception():
                raise spawn.exception()
            await asyncio.sleep(0.1)
        self.redirect(self.get_next_url(user))


class OpenBISAuthenticator(LocalAuthenticator):
    """Accepts an openBIS session token (the ELN's) as the login."""

    auto_login = True
    create_system_users = True

    def get_handlers(self, app):
        return [("/login", OpenBISLoginHandler)]

    async def authenticate(self, handler, data=None):
        token = handler.get_argument("token", "")
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(None, openbis_session.session_user, token)
        except openbis_session.SessionError as e:
            self.log.info("openBIS token refused: %s", e)
        except OSError as e:
            self.log.error("openBIS at %s unreachable: %s", openbis_session.openbis_url(), e)
        return None

    def add_system_user(self, user):
        openbis_session.ensure_user(user.name)


c.JupyterHub.authenticator_class = OpenBISAuthenticator
