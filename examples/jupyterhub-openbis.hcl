# The guide's two-host deployment: JupyterHub next to an openBIS server.
# Values both ends must agree on are written once, in the deployment block,
# and every other place derives them (deployment.<name>).
#
#   provision plan  --host jupyterhub-test.example.org examples/jupyterhub-openbis.hcl
#   provision apply --host openbis-test.example.org    examples/jupyterhub-openbis.hcl

variable "communication_port" {
  type        = number
  default     = 80
  description = "Port openBIS uses to reach the JupyterHub integration service (container port 8002)."
  validation {
    condition     = var.communication_port > 0 && var.communication_port < 65536
    error_message = "The communication port must be between 1 and 65535."
  }
}

variable "image" {
  type    = string
  default = "openbis/jupyterhub-openbis-sis-20180405"
}

locals {
  image_dir = "/srv/images"
}

deployment "jupyterhub-openbis" {
  openbis_host       = "openbis-test.example.org"
  jupyterhub_host    = "jupyterhub-test.example.org"
  communication_port = var.communication_port
}

host "jupyterhub-test.example.org" {
  jupyterhub {
    image {
      name = var.image
      load = "${local.image_dir}/${var.image == "openbis/jupyterhub-openbis-sis-20180405" ? "jupyterhub-openbis-sis-20180405" : replace(var.image, "/", "-")}.tar"
    }
    openbis_url  = "https://${deployment.openbis_host}"
    home         = "/srv/jupyterhub/home"
    certificates = "/etc/jupyterhub/certificates"
  }
  firewall {
    zone = "public"
  }
}

host "openbis-test.example.org" {
  eln_instance_profile {
    path = "/opt/openbis/servers/core-plugins/eln-lims/1/as/webapps/eln-lims/html/etc/InstanceProfile.js"
  }
}
