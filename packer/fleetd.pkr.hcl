# agent-fleet AMI: Amazon Linux 2023 + Docker + Node 20 + fleetd (one esbuild bundle) + the
# fleetd systemd unit + host isolation + CloudWatch agent. See packer/README.md.
#
# Build with `npm run bake` (it bundles fleetd first and passes the variables). The template must
# stay valid for two Packers:
#   - current Packer (>= 1.7) with the amazon plugin: plugins.pkr.hcl + this file, used to bake;
#   - Debian's packer 1.6.6, which runs the offline `packer validate` in packer/check.sh. It
#     rejects `required_plugins` (so plugins.pkr.hcl is left out of the checked copy) and the
#     newer amazon-ebs fields (so the lines between the "packer >= 1.7 only" markers below are
#     stripped from the checked copy). Everything else here is checked as it is.

variable "region" {
  type        = string
  default     = env("AWS_REGION")
  description = "Region to build in (default: $AWS_REGION)."
}

variable "arch" {
  type        = string
  default     = "arm64"
  description = "CPU architecture of the AMI: arm64 or x86_64."
  validation {
    condition     = contains(["arm64", "x86_64"], var.arch)
    error_message = "The arch variable must be \"arm64\" or \"x86_64\"."
  }
}

variable "instance_type" {
  type        = string
  default     = ""
  description = "Build instance type. Empty: t4g.medium for arm64, t3.medium for x86_64."
}

variable "source_ami_name" {
  type        = string
  default     = "al2023-ami-2023.*-kernel-*"
  description = "Name filter of the base AMI (standard AL2023, not minimal); the newest match for var.arch wins."
}

variable "source_ami_owners" {
  type        = list(string)
  default     = ["amazon"]
  description = "Owners the base AMI may come from."
}

variable "ami_name_prefix" {
  type    = string
  default = "agent-fleet"
}

variable "fleetd_version" {
  type        = string
  default     = "dev"
  description = "Version label of the bundled fleetd (npm run bake passes the git commit); tagged on the AMI."
}

variable "fleetd_bundle_dir" {
  type        = string
  default     = ""
  description = "Folder with fleetd.js (+ .map) from `npm run bundle`. Empty: dist/bundle beside packer/."
}

variable "volume_size_gb" {
  type        = number
  default     = 40
  description = "Root volume (gp3, encrypted). Agent images and per-task files live here."
}

variable "kms_key_id" {
  type        = string
  default     = ""
  description = "KMS key for the AMI's snapshots. Empty: the account's default EBS key."
}

variable "subnet_id" {
  type        = string
  default     = ""
  description = "Subnet of the build instance. Empty: the default VPC."
}

variable "iam_instance_profile" {
  type        = string
  default     = ""
  description = "Instance profile of the build instance; needs ECR pull rights when prepull_images names ECR images."
}

variable "prepull_images" {
  type        = list(string)
  default     = []
  description = "Agent images pulled into the AMI so the first task starts without a pull. ECR images log in with the build instance's credentials."
}

variable "enable_cloudwatch_agent" {
  type        = bool
  default     = true
  description = "Install and enable the CloudWatch agent shipping fleetd's and the tasks' logs."
}

variable "cloudwatch_log_group_prefix" {
  type        = string
  default     = "/agent-fleet"
  description = "Log groups: <prefix>/fleetd, <prefix>/system (task output: fleetd ships it to <prefix>/task-logs). The instance role needs logs:CreateLogStream/PutLogEvents on them."
}

variable "ami_users" {
  type        = list(string)
  default     = []
  description = "Account ids the AMI is shared with. Needs kms_key_id: an AMI encrypted with the default EBS key cannot be shared."
}

variable "ami_regions" {
  type        = list(string)
  default     = []
  description = "Extra regions the AMI is copied to."
}

variable "manifest_path" {
  type        = string
  default     = ""
  description = "Where the manifest post-processor writes the AMI id. Empty: dist/packer-manifest.json."
}

variable "tags" {
  type        = map(string)
  default     = {}
  description = "Extra tags on the AMI and its snapshots."
}

locals {
  timestamp     = formatdate("YYYYMMDDhhmmss", timestamp())
  instance_type = var.instance_type != "" ? var.instance_type : (var.arch == "arm64" ? "t4g.medium" : "t3.medium")
  bundle_dir    = var.fleetd_bundle_dir != "" ? var.fleetd_bundle_dir : "${path.root}/../dist/bundle"
  manifest_path = var.manifest_path != "" ? var.manifest_path : "${path.root}/../dist/packer-manifest.json"
  # Staging folder on the build instance; the scripts install from here and delete it.
  staging = "/tmp/fleetd-staging"
  ami_tags = merge(var.tags, {
    "agent-fleet:fleetd-version" = var.fleetd_version
    "agent-fleet:arch"           = var.arch
    "agent-fleet:base-ami"       = "{{ .SourceAMI }}"
    "agent-fleet:base-ami-name"  = "{{ .SourceAMIName }}"
  })
}

source "amazon-ebs" "al2023" {
  region               = var.region
  instance_type        = local.instance_type
  subnet_id            = var.subnet_id
  iam_instance_profile = var.iam_instance_profile
  ssh_username         = "ec2-user"

  source_ami_filter {
    filters = {
      name                = var.source_ami_name
      architecture        = var.arch
      root-device-type    = "ebs"
      virtualization-type = "hvm"
    }
    owners      = var.source_ami_owners
    most_recent = true
  }

  ami_name        = "${var.ami_name_prefix}-${var.arch}-${local.timestamp}"
  ami_description = "agent-fleet instance: AL2023, Docker, Node 20, fleetd ${var.fleetd_version}"
  ami_users       = var.ami_users
  ami_regions     = var.ami_regions
  encrypt_boot    = true
  kms_key_id      = var.kms_key_id
  tags            = local.ami_tags
  snapshot_tags   = local.ami_tags
  run_tags = {
    Name = "packer-${var.ami_name_prefix}-${var.arch}"
  }

  launch_block_device_mappings {
    device_name           = "/dev/xvda"
    volume_size           = var.volume_size_gb
    volume_type           = "gp3"
    iops                  = 3000
    throughput            = 125
    encrypted             = true
    delete_on_termination = true
  }

  # packer >= 1.7 only: begin (check.sh strips these lines for packer 1.6.6)
  # The build instance answers IMDSv2 only, and instances launched from the AMI default to
  # IMDSv2 (the launch template in infra/ also requires it, with hop limit 1).
  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }
  imds_support = "v2.0"
  # packer >= 1.7 only: end
}

build {
  sources = ["source.amazon-ebs.al2023"]

  provisioner "shell" {
    inline = ["mkdir -p ${local.staging}/bundle ${local.staging}/files"]
  }

  provisioner "file" {
    source      = "${local.bundle_dir}/"
    destination = "${local.staging}/bundle"
  }

  provisioner "file" {
    source      = "${path.root}/files/"
    destination = "${local.staging}/files"
  }

  # Scripts run as root; data reaches them as environment variables, never as shell text.
  provisioner "shell" {
    execute_command = "chmod +x {{ .Path }}; sudo env {{ .Vars }} {{ .Path }}"
    environment_vars = [
      "FLEETD_STAGING=${local.staging}",
      "AWS_REGION=${var.region}",
      "ENABLE_CLOUDWATCH_AGENT=${var.enable_cloudwatch_agent}",
      "CLOUDWATCH_LOG_GROUP_PREFIX=${var.cloudwatch_log_group_prefix}",
      "PREPULL_IMAGES=${join(" ", var.prepull_images)}",
    ]
    scripts = [
      "${path.root}/scripts/10-packages.sh",
      "${path.root}/scripts/20-fleetd.sh",
      "${path.root}/scripts/30-host.sh",
      "${path.root}/scripts/40-cloudwatch-agent.sh",
      "${path.root}/scripts/50-prepull-images.sh",
      "${path.root}/scripts/90-cleanup.sh",
    ]
  }

  post-processor "manifest" {
    output     = local.manifest_path
    strip_path = true
    custom_data = {
      arch           = var.arch
      fleetd_version = var.fleetd_version
    }
  }
}
