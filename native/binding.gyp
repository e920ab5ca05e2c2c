{
  "targets": [
    {
      "target_name": "tcplb_native",
      "sources": [
        "src/binding.cc",
        "src/engine.cc",
        "src/net_util.cc",
        "src/route.cc",
        "src/tls.cc"
      ],
      "defines": ["NAPI_VERSION=8"],
      "cflags!": ["-O3"],
      "cflags_cc!": ["-O3", "-std=gnu++17"],
      "cflags_cc": ["-std=c++17", "-O2", "-Wall", "-Wextra", "-fno-exceptions", "-ffp-contract=off", "-pthread"],
      "ldflags": ["-pthread"]
    }
  ]
}
