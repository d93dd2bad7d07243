// Single-copy transfers from and to another process's memory (Cross Memory Attach: process_vm_readv and
// process_vm_writev), which need ptrace permission over the peer; and what grants it under Yama.
#pragma once
#include <napi.h>

namespace rdma {

// processRead(pid, remote: [{addr, length}], target: ArrayBuffer, offset, length) → bytes copied
// processWrite(pid, remote: [{addr, length}], source: ArrayBuffer, offset, length) → bytes copied
// Fewer bytes than asked is a partial transfer (the remote ranges ended in unmapped memory).
Napi::Value ProcessRead(const Napi::CallbackInfo& info);
Napi::Value ProcessWrite(const Napi::CallbackInfo& info);
// allowPtracer(pid | -1 for any | 0 for none): prctl(PR_SET_PTRACER), what Yama scope 1 asks of a target.
Napi::Value AllowPtracer(const Napi::CallbackInfo& info);
// addressOf(arrayBuffer, offset) → the address of that byte in this process (a bigint).
Napi::Value AddressOf(const Napi::CallbackInfo& info);

}  // namespace rdma
