# Offline install: the image arrives as a `docker save` tar (4-5 GB) on a
# server without registry access. provision reads the tar's manifest to
# know the image ID in milliseconds and loads it only when it is missing
# or the tar changed.

deployment "jupyterhub-openbis" {
  openbis_host       = "openbis.example.org"
  jupyterhub_host    = "jupyterhub.example.org"
  communication_port = 8002
}

host "jupyterhub.example.org" {
  jupyterhub {
    image {
      name = "openbis/jupyterhub-openbis-sis-20180405:latest"
      load = "/srv/images/jupyterhub-openbis-sis-20180405.tar"
      keep = 1 # previous image kept for rollback
    }
    certificates = "/etc/jupyterhub/certificates"
  }
  firewall {}
}

host "openbis.example.org" {
  eln_instance_profile {
    path = "/opt/openbis/servers/core-plugins/eln-lims/1/as/webapps/eln-lims/html/etc/InstanceProfile.js"
  }
}
