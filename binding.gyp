{
  "targets": [
    {
      "target_name": "rdma_native",
      "sources": [
        "native/addon.cc", "native/ah.cc", "native/args.cc", "native/bench.cc", "native/bench_loops.cc", "native/channel.cc", "native/cm_channel.cc", "native/cm_id.cc",
        "native/context.cc", "native/cq.cc",
        "native/device_list.cc", "native/errors.cc", "native/mr.cc", "native/mw.cc", "native/pd.cc", "native/poller.cc",
        "native/post.cc", "native/prepared.cc", "native/qp.cc", "native/qp_attr.cc", "native/resource.cc",
        "native/srq.cc", "native/alloc.cc", "native/interval_tree.cc", "native/regcache.cc", "native/regcache_testing.cc",
        "native/uffd_monitor.cc", "native/watch_table.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-Wno-missing-field-initializers", "-fexceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17"],
      "cflags": ["<!@(bash scripts/check-headers.sh)"],
      "libraries": ["<!@(pkg-config --libs libibverbs librdmacm)"]
    }
  ]
}
