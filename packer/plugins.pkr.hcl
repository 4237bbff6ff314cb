# Current Packer only (>= 1.7): plugin requirements. `packer init packer/` installs them.
#
# Debian's packer 1.6.6, which runs the offline checks (packer/check.sh), rejects the
# `required_plugins` block, so check.sh validates a copy of this folder without this file.
# Keep everything 1.6 rejects either here or between the "packer >= 1.7 only" markers in
# fleetd.pkr.hcl (check.sh strips those lines from its copy).
packer {
  required_version = ">= 1.7.0"
  required_plugins {
    amazon = {
      source  = "github.com/hashicorp/amazon"
      version = ">= 1.2.0"
    }
  }
}
