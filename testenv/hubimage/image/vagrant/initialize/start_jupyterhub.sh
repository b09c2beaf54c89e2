#!/bin/sh
# Entry point of the JupyterHub-for-openBIS stand-in image, started as the
# guide's `docker run … IMAGE ./vagrant/initialize/start_jupyterhub.sh`.
#
# The integration service runs in the background; JupyterHub replaces this
# shell as the container's pid 1, so `docker stop`'s SIGTERM reaches it
# directly. When it exits, the kernel ends the rest of the container,
# integration service included.
set -eu

for v in OPENBIS_URL JUPYTERHUB_PORT JUPYTERHUB_INTEGRATION_SERVICE_PORT CERTIFICATE_KEY CERTIFICATE_CRT; do
	eval "val=\${$v:-}"
	if [ -z "$val" ]; then
		echo "start_jupyterhub.sh: $v is not set" >&2
		exit 2
	fi
done

python3 /vagrant/initialize/integration_service.py &

# JupyterHub keeps its database, cookie secret and proxy pid file here.
mkdir -p /var/lib/jupyterhub
cd /var/lib/jupyterhub
exec jupyterhub -f /vagrant/config/jupyterhub_config.py
