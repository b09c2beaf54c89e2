#!/bin/sh
# Managed by provision (file.start_script): edits here are drift and are
# overwritten by the next `provision apply`.
#
# Runs the JupyterHub for openBIS container in the foreground, as the guide's
# jupyterhub-openbis-start.sh does, for the systemd unit to supervise. Every
# value is single-quoted where needed; "--" keeps an image name from being
# read as an option.
set -eu

# Only one JupyterHub may run per server: its ports are fixed. Remove a
# leftover container of this name before starting the new one.
docker rm -f -- jupyterhub-openbis >/dev/null 2>&1 || true

exec docker run \
	--name jupyterhub-openbis \
	--label provision.deployment=jupyterhub-openbis \
	-e OPENBIS_URL=https://openbis-test.example.org \
	-e JUPYTERHUB_INTEGRATION_SERVICE_PORT=8002 \
	-e JUPYTERHUB_PORT=8000 \
	-e CERTIFICATE_KEY=/vagrant/config/certificates/default.key \
	-e CERTIFICATE_CRT=/vagrant/config/certificates/default.crt \
	-p 443:8000 \
	-p 127.0.0.1:8081:8081 \
	-p 127.0.0.1:8001:8001 \
	-p 80:8002 \
	-v /srv/jupyterhub/home:/home \
	-v /etc/jupyterhub/certificates:/vagrant/config/certificates \
	-- openbis/jupyterhub-openbis-sis-20180405 \
	./vagrant/initialize/start_jupyterhub.sh
