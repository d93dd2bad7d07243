{
  "target_defaults": {
    "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED", "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS"],
    "include_dirs": ["native"],
    "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-Wno-missing-field-initializers", "-fexceptions"],
    "cflags_cc!": ["-fno-exceptions", "-std=gnu++17"]
  },
  "variables": {
    "has_pmix": "<!(pkg-config --exists pmix && echo 1 || echo 0)"
  },
  "targets": [
    {
      "target_name": "rdma_core",
      "type": "static_library",
      "sources": ["native/core/interval_tree.cc", "native/core/uffd_monitor.cc", "native/core/vma.cc", "native/core/watch_table.cc", "native/core/rdma_netlink.cc"],
      "cflags": ["-fPIC"]
    },
    {
      "target_name": "rdma-node-shepherd",
      "type": "executable",
      "sources": ["native/jobs/shepherd.cc"]
    },
    {
      "target_name": "rdma_native",
      "dependencies": ["rdma_core"],
      "sources": [
        "native/addon/addon.cc", "native/addon/args.cc", "native/addon/errors.cc", "native/addon/fields.cc", "native/addon/keys.cc", "native/addon/poller.cc", "native/addon/resource.cc", "native/addon/rdma_link.cc",
        "native/verbs/ah.cc", "native/verbs/completion_channel.cc", "native/verbs/context.cc", "native/verbs/cq.cc", "native/verbs/device_list.cc", "native/verbs/flow.cc", "native/verbs/flow_counters.cc", "native/verbs/xrcd.cc",
        "native/verbs/mr.cc", "native/verbs/mw.cc", "native/verbs/pd.cc", "native/verbs/post.cc", "native/verbs/prepared.cc",
        "native/verbs/qp.cc", "native/verbs/qp_attr.cc", "native/verbs/srq.cc",
        "native/cm/cm_channel.cc", "native/cm/cm_id.cc",
        "native/memory/alloc.cc", "native/memory/cma.cc", "native/memory/registration_cache.cc", "native/memory/segment.cc", "native/memory/segment_channel.cc",
        "native/bench/bench.cc", "native/bench/bench_loops.cc",
        "native/jobs/pmix.cc",
        "native/collectives/collective_engine.cc", "native/collectives/engine.cc", "native/collectives/reduce.cc",
        "native/testing/hooks.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "cflags": ["<!@(bash scripts/check-headers.sh)"],
      "libraries": ["<!@(pkg-config --libs libibverbs librdmacm)"],
      "conditions": [
        ["has_pmix==1", {
          "defines": ["RDMA_NODE_HAVE_PMIX"],
          "cflags": ["<!@(pkg-config --cflags pmix)"],
          "libraries": ["<!@(pkg-config --libs pmix)"]
        }]
      ]
    }
  ]
}
