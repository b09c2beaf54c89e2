# The end-to-end tests' spec: one throwaway server plays both ends of the
# deployment, so it is applied twice, once per host block:
#
#   provision apply --host jupyterhub.demo.internal /etc/provision/demo.hcl
#   provision apply --host openbis.demo.internal    /etc/provision/demo.hcl
#
# The image is an offline stand-in for jupyterhub-openbis, delivered as a
# `docker save` tar; its start script serves a page with the environment
# the container received. An upgrade is -var image_version=2 with the
# matching tar in /srv/images.

variable "image_version" {
  type        = string
  default     = "1"
  description = "Version of the stand-in image; its tar is /srv/images/jupyterhub-standin-VERSION.tar."
}

variable "health_timeout" {
  type        = string
  default     = "60s"
  description = "How long apply waits for the hub to answer after a (re)start before it rolls back."
}

deployment "jupyterhub-demo" {
  openbis_host       = "openbis.demo.internal"
  jupyterhub_host    = "jupyterhub.demo.internal"
  communication_port = 8002
  # The stand-in serves plain HTTP on the container's 8000, published as
  # is; a real deployment keeps the default 443 (https://HOST/).
  hub_port = 8000
}

host "jupyterhub.demo.internal" {
  jupyterhub {
    image {
      name = "openbis/jupyterhub-standin:${var.image_version}"
      load = "/srv/images/jupyterhub-standin-${var.image_version}.tar"
      keep = 1 # the previous image stays for rollback
    }
    openbis_url = "https://${deployment.openbis_host}:8443"
    # The stand-in speaks plain HTTP; the real image serves HTTPS on 8000.
    health_url     = "http://127.0.0.1:8000/"
    health_timeout = var.health_timeout
  }
  # The users' browsers call the hub and the communication port; with no
  # users_from they may come from anywhere.
  firewall { zone = "public" }
}

host "openbis.demo.internal" {
  eln_instance_profile {
    path = "/opt/openbis/servers/core-plugins/eln-lims/1/as/webapps/eln-lims/html/etc/InstanceProfile.js"
  }
}
