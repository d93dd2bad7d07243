#!/usr/bin/env bash
# Called by binding.gyp before compiling: fails in one clear line when the rdma-core headers are missing
# (instead of a wall of compiler errors), else prints the compiler flags pkg-config gives.
if ! pkg-config --exists libibverbs librdmacm || [ ! -f "$(pkg-config --variable=includedir libibverbs)/infiniband/verbs.h" ]; then
  echo "rdma-node: infiniband/verbs.h not found; install rdma-core's headers (Debian/Ubuntu: sudo apt-get install libibverbs-dev librdmacm-dev pkg-config; 'rdma-node setup' installs them and the rest)" >&2
  exit 1
fi
pkg-config --cflags libibverbs librdmacm
