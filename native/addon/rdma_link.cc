#include "addon/rdma_link.h"

#include <string>
#include <vector>

#include "addon/args.h"
#include "addon/errors.h"
#include "core/rdma_netlink.h"

namespace rdma {

// A name the kernel copies into a buffer of `max` bytes with its NUL: 1 to max - 1 bytes, none of them NUL.
static std::string ToName(Napi::Value value, const std::string& what, size_t max) {
  Napi::Env env = value.Env();
  if (!value.IsString()) ThrowType(env, what + " must be a string");
  std::string name = value.As<Napi::String>().Utf8Value();
  if (name.empty() || name.size() >= max || name.find('\0') != std::string::npos) {
    ThrowRange(env, what + " must be 1 to " + std::to_string(max - 1) + " bytes long, without NUL");
  }
  return name;
}

static void Check(Napi::Env env, const NetlinkResult& result) {
  if (result.err != 0) ThrowVerb(env, result.command, result.err, result.detail);
}

Napi::Value RdmaLinkAdd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = info[0].IsUndefined() ? "" : ToName(info[0], "name", kRdmaDeviceNameMax);
  std::string netdev = ToName(info[1], "netdev", kNetdevNameMax);
  std::string type = ToName(info[2], "link type", kNetdevNameMax);
  Check(env, AddRdmaLink(&name, netdev, type));
  return Napi::String::New(env, name);
}

Napi::Value RdmaLinkDelete(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = ToName(info[0], "name", kRdmaDeviceNameMax);
  Check(env, DeleteRdmaLink(name));
  return env.Undefined();
}

Napi::Value RdmaLinkList(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::vector<RdmaLink> links;
  Check(env, ListRdmaLinks(&links));
  Napi::Array array = Napi::Array::New(env, links.size());
  for (size_t i = 0; i < links.size(); i++) {
    const RdmaLink& link = links[i];
    Napi::Object entry = Napi::Object::New(env);
    entry.Set("name", link.name);
    entry.Set("index", link.index);
    entry.Set("port", link.port);
    entry.Set("nodeGuid", FromU64(env, link.node_guid));
    if (!link.protocol.empty()) entry.Set("protocol", link.protocol);
    entry.Set("state", link.state);
    entry.Set("physicalState", link.phys_state);
    if (!link.netdev.empty()) {
      entry.Set("netdev", link.netdev);
      entry.Set("netdevIndex", link.netdev_index);
    }
    array.Set(static_cast<uint32_t>(i), entry);
  }
  return array;
}

Napi::Value RdmaGsiQpState(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = ToName(info[0], "name", kRdmaDeviceNameMax);
  uint32_t port = ToU32(info[1], "port", 255);  // a u8 in the kernel
  uint8_t state = 0;
  Check(env, GsiQpState(name, port, &state));
  return Napi::Number::New(env, state);
}

}  // namespace rdma
