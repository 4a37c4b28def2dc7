{
  "targets": [
    {
      "target_name": "memfd",
      "sources": [
        "native/addon.c",
        "native/common.c",
        "native/handle.c",
        "native/memfd.c",
        "native/io.c",
        "native/mapping.c",
        "native/futex.c",
        "native/socket.c",
        "native/notice.c",
        "native/pidfd.c",
        "native/channel.c"
      ],
      "defines": ["NAPI_VERSION=8", "_GNU_SOURCE"],
      "cflags": ["-std=gnu11", "-Wall", "-Wextra", "-Wshadow", "-Wno-unused-parameter", "-Werror=implicit-function-declaration", "-fvisibility=hidden"],
      "conditions": [
        ["OS!='linux'", { "type": "none" }]
      ]
    }
  ]
}
