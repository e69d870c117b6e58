{
  "targets": [
    {
      "target_name": "scif_net",
      "sources": [
        "native/addon.cc",
        "native/socket_handle.cc",
        "native/socket_write.cc",
        "native/rma_lane.cc",
        "native/socket_rma.cc",
        "native/socket_read.cc",
        "native/busy_poll.cc",
        "native/backend.cc",
        "native/scif_endpoint.cc",
        "native/loop_endpoint.cc",
        "native/loop_accept.cc",
        "native/turn_queue.cc",
        "native/scif_rma.cc",
        "native/scif_mapping.cc",
        "native/cluster.cc",
        "<!@(node -p \"require('fs').readdirSync('kernel/src').filter((f) => f.endsWith('.c')).map((f) => 'kernel/src/' + f).join(' ')\")"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "kernel/include",
        "kernel/src",
        "native"
      ],
      "dependencies": ["<!(node -p \"require('node-addon-api').targets\"):node_addon_api"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED", "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS", "_GNU_SOURCE"],
      "cflags": ["-Wall", "-Wextra", "-O2", "-pthread"],
      "cflags_c": ["-std=c11"],
      "cflags_cc": ["-std=c++17"],
      "ldflags": ["-pthread"],
      "libraries": ["-ldl"]
    }
  ]
}
