/* Sanitizer canary: a tiny Node-API addon with two deliberate bugs, built with the same flags as the
 * ASan build of memfd. scripts/test-asan.mjs calls it before the real run to prove that the whole
 * pipeline (instrumented build, LD_PRELOAD, report files from every process) would catch a real bug.
 * Never part of the published addon. */
#include <node_api.h>
#include <stdlib.h>
#include <string.h>

static volatile int sink;

/* Heap buffer overflow: one byte past a 16-byte allocation. */
static napi_value overflow(napi_env env, napi_callback_info info) {
  volatile size_t size = 16; /* unknown at compile time, so only ASan (not UBSan object-size) sees it */
  char *p = malloc(size);
  memset(p, 0, size);
  p[size] = 1;
  sink = p[0];
  free(p);
  return NULL;
}

/* Undefined behaviour: signed integer overflow and an out-of-range shift. */
static napi_value undefined_behaviour(napi_env env, napi_callback_info info) {
  volatile int big = 0x7fffffff;
  volatile int shift = 40;
  sink = big + 1;
  sink = 1 << shift;
  return NULL;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "overflow", NAPI_AUTO_LENGTH, overflow, NULL, &fn);
  napi_set_named_property(env, exports, "overflow", fn);
  napi_create_function(env, "undefinedBehaviour", NAPI_AUTO_LENGTH, undefined_behaviour, NULL, &fn);
  napi_set_named_property(env, exports, "undefinedBehaviour", fn);
  return exports;
}
