{
  "targets": [
    {
      "target_name": "shardpool_io",
      "sources": ["native/shardpool_io.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-std=gnu11"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
