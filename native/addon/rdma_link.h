// The RDMA links of the kernel (core/rdma_netlink.h) for JS: what `rdma link add/delete/show` do.
#pragma once
#include <napi.h>

namespace rdma {

// rdmaLinkAdd(name | undefined, netdev, type) → the name of the new device (the first free "<type>N"
// when no name is given)
Napi::Value RdmaLinkAdd(const Napi::CallbackInfo& info);
// rdmaLinkDelete(name)
Napi::Value RdmaLinkDelete(const Napi::CallbackInfo& info);
// rdmaLinkList() → [{name, index, port, nodeGuid, protocol?, state, physicalState, netdev?, netdevIndex?}]
Napi::Value RdmaLinkList(const Napi::CallbackInfo& info);
// rdmaGsiQpState(name, port) → the enum ib_qp_state of the port's QP1
Napi::Value RdmaGsiQpState(const Napi::CallbackInfo& info);

}  // namespace rdma
