# An extended image, the guide's "correct maintenance" path: the official
# image plus a recipe of Python and R packages. The image name carries the
# user and the date, as the guide recommends; provision rebuilds only when
# the recipe or the base image changed.

variable "maintainer" {
  type    = string
  default = "juanf"
}

deployment "jupyterhub-openbis" {
  openbis_host       = "openbis.example.org"
  jupyterhub_host    = "jupyterhub.example.org"
  communication_port = 80
}

host "jupyterhub.example.org" {
  jupyterhub {
    image {
      name = "jupyterhub-openbis-sis-${var.maintainer}extensions-recipe-20180406"
      build {
        from            = "openbis/jupyterhub-openbis-sis-20180405"
        python_packages = ["prettytable"]
        r_packages      = ["r-base64enc"]
      }
    }
    home         = "/srv/jupyterhub/home"
    certificates = "/etc/jupyterhub/certificates"
  }
  firewall {
    zone = "public"
    # Where the users' browsers come from (default: anywhere). The guide's
    # allow_from = ["openbis.example.org"] would restrict the integration
    # port to the openBIS server, which never calls it: the ELN's users
    # could not create notebooks (plan warns).
    users_from = ["192.0.2.0/24", "2001:db8::/32"]
  }
}

host "openbis.example.org" {
  eln_instance_profile {
    path = "/opt/openbis/servers/core-plugins/eln-lims/1/as/webapps/eln-lims/html/etc/InstanceProfile.js"
  }
}
