// Hooks for the tests and the benchmark of the registration cache, exported as `testing`: what JS cannot
// reach otherwise (fork(), the monitor losing track, a registration the binding does not know of) and timing
// loops that must not include JS overhead.
#pragma once
#include <napi.h>

namespace rdma {

Napi::Object TestingExports(Napi::Env env);

}  // namespace rdma
