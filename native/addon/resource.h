// The lifetime rules every verbs object follows (see DEVELOPERS.md):
// - an object holds a strong reference to each object it uses (its parents: PD, CQs, channel...), so GC
//   can never free a parent under a child;
// - an object tracks its dependents and closes them first, so closing a context closes everything made
//   from it, in a valid order (QPs before CQs, MRs before PDs);
// - Close() is idempotent and reachable from close(), the finalizer and the environment reaper; only a
//   close from JS may settle promises, finalizers and teardown never call into JS.
#pragma once
#include <napi.h>

#include <memory>
#include <string>
#include <vector>

#include "addon/addon.h"
#include "addon/errors.h"

namespace rdma {

enum class CloseMode { kFromJs, kQuiet };

class Resource {
 public:
  Resource(const Resource&) = delete;
  Resource& operator=(const Resource&) = delete;

  bool closed() const { return closed_; }
  void Close(CloseMode mode);
  const char* kind() const { return kind_; }
  // Throws a clear error when used after close. Methods call it after reading their arguments, right
  // before the verb: reading a JS argument can run JS (a getter, a Proxy) that closes this object.
  void CheckOpen(Napi::Env env) const;

 protected:
  Resource(Napi::Env env, const char* kind);
  virtual ~Resource();

  // Records that this object uses `parent`: holds it alive and lets it close this object first.
  void DependOn(Napi::Object parent_js, Resource* parent);
  // Undoes DependOn (a window rebound elsewhere no longer uses its old MR).
  void StopDependingOn(Resource* parent);
  // Destroys the underlying verbs object; returns 0 or an errno. `mode` says whether JS may be called.
  virtual int Destroy(CloseMode mode) = 0;
  Napi::Env env_;

 private:
  const char* kind_;
  std::shared_ptr<LiveSet> live_;
  bool closed_ = false;
  std::vector<Resource*> dependents_;
  std::vector<std::pair<Resource*, Napi::ObjectReference>> parents_;
};

// Unique tags per class (napi_type_tag), so an object of the wrong class is a TypeError, not a bad cast.
template <class T>
T* UnwrapTagged(Napi::Value value, const std::string& name) {
  Napi::Env env = value.Env();
  bool ok = false;
  if (value.IsObject()) napi_check_object_type_tag(env, value, &T::kTag, &ok);
  if (!ok) ThrowType(env, name + " must be a " + T::kName);
  return T::Unwrap(value.As<Napi::Object>());
}

// As UnwrapTagged, and the object must not be closed.
template <class T>
T* UnwrapOpen(Napi::Value value, const std::string& name) {
  T* object = UnwrapTagged<T>(value, name);
  if (object->closed()) ThrowType(value.Env(), name + " (" + T::kName + ") is closed");
  return object;
}

// Objects are only made by their parent (context.allocPd(), pd.registerMemory() ...): the constructor
// takes a private token, so `new` from JS on a leaked constructor is a TypeError.
extern int kConstructToken;
Napi::External<int> ConstructToken(Napi::Env env);
void CheckConstructToken(const Napi::CallbackInfo& info, const char* how);

// The JS surface every object shares: close() and the `closed` getter. Mixed into each wrapped class.
template <class T>
struct Lifecycle {
  using Method = Napi::Value (T::*)(const Napi::CallbackInfo&);
  Napi::Value CloseJs(const Napi::CallbackInfo& info) {
    static_cast<T*>(this)->Close(CloseMode::kFromJs);
    return info.Env().Undefined();
  }
  Napi::Value ClosedJs(const Napi::CallbackInfo& info) {
    return Napi::Boolean::New(info.Env(), static_cast<T*>(this)->closed());
  }
  static Napi::ClassPropertyDescriptor<T> CloseMethod() {
    return T::InstanceMethod("close", static_cast<Method>(&Lifecycle::CloseJs));
  }
  static Napi::ClassPropertyDescriptor<T> ClosedGetter() {
    return T::InstanceAccessor("closed", static_cast<Method>(&Lifecycle::ClosedJs), nullptr);
  }
};

}  // namespace rdma
