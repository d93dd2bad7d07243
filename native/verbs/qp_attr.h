// Conversion of ibv_qp_attr to and from JS objects. Which attributes a modify carries is given by which
// keys are present (camelCase of the C fields), so the attribute mask always matches the values.
#pragma once
#include <infiniband/verbs.h>
#include <napi.h>

namespace rdma {

int QpAttrFromJs(Napi::Object js, ibv_qp_attr* attr);  // returns the ibv_qp_attr_mask
Napi::Object QpAttrToJs(Napi::Env env, const ibv_qp_attr& attr, const ibv_qp_init_attr& init);
Napi::Object QpCapToJs(Napi::Env env, const ibv_qp_cap& cap);
// Address vectors ({dlid, sl, srcPathBits, staticRate, portNum, grh?}), for QPs, AHs and CM events.
void AhAttrFromJs(Napi::Object js, ibv_ah_attr* ah);
Napi::Object AhAttrToJs(Napi::Env env, const ibv_ah_attr& ah);

}  // namespace rdma
