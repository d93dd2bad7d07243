#!/usr/bin/env bash
# Installs the Debian packages this project needs, only those missing. Idempotent: a second run installs
# nothing. Build needs the rdma-core headers; the device tests and `npm start` need the rxe provider, the
# C reference tools (perftest, ibverbs-utils, rdmacm-utils) and what the Soft-RoCE VM is made of.
# `setup.sh sanitize` installs the tools of `npm run test:sanitize` and `npm run lint:native` instead
# (cmake, clang-tidy, valgrind): not needed by `npm test` or by users.
set -euo pipefail

packages=(
  pkg-config libibverbs-dev librdmacm-dev ibverbs-providers rdma-core   # build + rxe provider
  ibverbs-utils rdmacm-utils perftest iproute2                           # reference tools, `rdma link`
  qemu-system-x86 busybox-static cpio kmod xz-utils                      # the Soft-RoCE VM
  debootstrap patch                                                      # the patched rdma_rxe (kernel/patches)
  libpmix-dev openmpi-bin libopenmpi-dev                                 # jobs: PMIx, mpirun
  slurmctld slurmd slurm-client munge openssh-server openssh-client      # jobs: srun, ssh between VMs
)
case "${1:-}" in
  '') ;;
  sanitize) packages=(cmake clang-tidy valgrind) ;;                      # cmake-js builds, lint:native, memcheck
  *) echo "usage: setup.sh [sanitize]" >&2; exit 2 ;;
esac

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "rdma-node setup: installing ${missing[*]}" >&2
if ! command -v apt-get >/dev/null; then
  echo "rdma-node setup: no apt-get here; install these packages by hand: ${missing[*]}" >&2
  exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo="sudo -n"
  else
    echo "rdma-node setup: not root and no passwordless sudo; as root run: apt-get install ${missing[*]}" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
# sshd, munged, slurmctld and slurmd are for the VMs, which start their own: their packages must not
# start them on this host (policy-rc.d 101: no service starts while installing).
policy=/usr/sbin/policy-rc.d
if [ ! -e $policy ]; then
  printf '#!/bin/sh\nexit 101\n' | $sudo tee $policy >/dev/null
  $sudo chmod +x $policy
  trap '$sudo rm -f $policy' EXIT
fi
# A stale package list makes `install` fail with 404s; refresh once, then install.
$sudo apt-get update -qq >&2
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
