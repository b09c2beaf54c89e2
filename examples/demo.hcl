# The demo's spec (.ci/demo): two throwaway servers, an openBIS server and a
# JupyterHub server, on a private network, and a user's browser on another
# network. The same file is applied on both, the JupyterHub host first:
#
#   provision apply --host jupyterhub.test /etc/provision/demo.hcl   (on the JupyterHub server)
#   provision apply --host openbis.test    /etc/provision/demo.hcl   (on the openBIS server)
#
# The image is a real JupyterHub 3.0 built from Debian's packages (the real
# jupyterhub-openbis image is in no registry these machines reach),
# delivered as a `docker save` tar, the way sites without registry access
# receive the real one.

deployment "jupyterhub-demo" {
  openbis_host       = "openbis.test"
  jupyterhub_host    = "jupyterhub.test"
  communication_port = 8002
  # hub_port = 443, the default: the ELN opens https://jupyterhub.test/.
}

host "jupyterhub.test" {
  jupyterhub {
    image {
      name = "openbis/jupyterhub-openbis-debian:3.0"
      load = "/srv/images/jupyterhub-openbis-debian.tar"
    }
    # The container checks users' tokens against openBIS. Containers on the
    # demo servers have no DNS, so this names the openBIS server's address,
    # which its certificate carries too.
    openbis_url    = "https://192.0.2.11"
    certificates   = "/etc/jupyterhub/certificates"
    home           = "/srv/jupyterhub/home"
    health_timeout = "90s"
  }
  # The users' browsers call the hub and the communication port (the
  # openBIS server never does); with no users_from they may come from
  # anywhere, and nothing else is reachable.
  firewall {
    zone = "public"
  }
}

host "openbis.test" {
  eln_instance_profile {
    path = "/opt/openbis/servers/core-plugins/eln-lims/1/as/webapps/eln-lims/html/etc/InstanceProfile.js"
  }
}
