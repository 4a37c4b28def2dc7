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
        ["OS!='linux'", { "type": "none" }],
        # node's common.gypi defines _FILE_OFFSET_BITS=64, so glibc's headers route fcntl to fcntl64@GLIBC_2.28.
        # On 64-bit targets off_t is 64 bits either way; without the define the glibc floor is 2.17.
        # 32-bit builds keep it: there it is what makes off_t 64 bits.
        ["target_arch=='x64' or target_arch=='arm64'", { "defines!": ["_FILE_OFFSET_BITS=64"] }]
      ]
    }
  ]
}
