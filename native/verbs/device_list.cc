// binding.listDevices(): what ibv_get_device_list knows, without opening anything.
#include <infiniband/verbs.h>
#include <napi.h>

#include <cerrno>
#include <endian.h>

#include "addon/args.h"
#include "addon/errors.h"

namespace rdma {

Napi::Value ListDevices(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int count = 0;
  ibv_device** list = ibv_get_device_list(&count);
  // ENOSYS means the kernel has no RDMA support at all: that is "no devices", not a failure.
  if (list == nullptr) {
    if (errno == ENOSYS) return Napi::Array::New(env);
    ThrowVerb(env, "ibv_get_device_list", errno);
  }
  Napi::Array devices = Napi::Array::New(env, count);
  for (int i = 0; i < count; i++) {
    Napi::Object device = Napi::Object::New(env);
    device.Set("name", ibv_get_device_name(list[i]));
    device.Set("guid", FromU64(env, be64toh(ibv_get_device_guid(list[i]))));
    device.Set("nodeType", static_cast<int>(list[i]->node_type));
    device.Set("transportType", static_cast<int>(list[i]->transport_type));
    device.Set("index", ibv_get_device_index(list[i]));
    devices.Set(i, device);
  }
  ibv_free_device_list(list);
  return devices;
}

}  // namespace rdma
