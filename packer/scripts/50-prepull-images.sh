#!/usr/bin/env bash
# Optionally pull agent images into the AMI (PREPULL_IMAGES: space-separated references, from
# the packer variable prepull_images), so an instance's first task starts without a pull.
# ECR registries are logged in to with the build instance's own credentials
# (iam_instance_profile); the login is removed before the image is taken.
set -euo pipefail

read -r -a images <<<"${PREPULL_IMAGES:-}"
if ((${#images[@]} == 0)); then
  echo "50-prepull-images: none requested"
  exit 0
fi

readonly ecr_pattern='^([0-9]{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$'
systemctl start docker.service
declare -A logged_in=()
for image in "${images[@]}"; do
  if [[ ! $image =~ ^[A-Za-z0-9][A-Za-z0-9._/:@-]*$ ]]; then
    echo "50-prepull-images: not an image reference: '$image'" >&2
    exit 1
  fi
  registry=${image%%/*}
  if [[ $registry =~ $ecr_pattern && -z ${logged_in[$registry]:-} ]]; then
    aws ecr get-login-password --region "${BASH_REMATCH[2]}" |
      docker login --username AWS --password-stdin "$registry"
    logged_in[$registry]=1
  fi
  docker pull "$image"
done
for registry in "${!logged_in[@]}"; do
  docker logout "$registry"
done
rm -f /root/.docker/config.json
docker image ls
systemctl stop docker.service docker.socket
