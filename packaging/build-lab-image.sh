#!/bin/sh
# Build the lab image (packaging/Containerfile.lab) when this machine can; otherwise say why and
# skip (exit 0). Skipped: no podman, no docker with a working daemon, or a base image that can
# be neither found locally nor pulled. A build that starts and then fails is an error.
set -u
cd "$(dirname "$0")/.."
FILE=packaging/Containerfile.lab
TAG=${BLOCKPROBE_LAB_IMAGE:-blockprobe-lab}
BASE=$(sed -n 's/^FROM \([^ ]*\).*/\1/p' "$FILE" | head -n1)

engine=""
for candidate in podman docker; do
  command -v "$candidate" >/dev/null 2>&1 || continue
  if "$candidate" info >/dev/null 2>&1; then engine=$candidate; break; fi
  echo "lab image: '$candidate' is installed but '$candidate info' fails (no engine behind it)"
done
if [ -z "$engine" ]; then
  echo "lab image: SKIPPED: no working container engine (podman, or docker with a daemon)"
  exit 0
fi
if ! "$engine" image inspect "$BASE" >/dev/null 2>&1 \
   && ! "$engine" pull -q "$BASE" >/dev/null 2>&1; then
  echo "lab image: SKIPPED: $engine cannot pull the base image $BASE (no registry access)"
  exit 0
fi
echo "lab image: building $TAG with $engine from $BASE"
if [ "$engine" = podman ]; then
  # chroot isolation runs the RUN steps without cgroups of their own, so the build also works
  # inside a container whose cgroups crun cannot use ("cgroups in hybrid mode not supported").
  exec podman build --isolation chroot -f "$FILE" -t "$TAG" .
fi
exec docker build -f "$FILE" -t "$TAG" .
