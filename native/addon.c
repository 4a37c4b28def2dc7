/* memfd: Node-API entry point. One file per concept; each registers its functions here. */
#include "common.h"
#include "mapping.h"

#include <stdlib.h>

bool init_channel(napi_env env, napi_value exports); /* channel.c */

static void free_addon_data(napi_env env, void *data, void *hint) {
  addon_data *d = data;
  if (d->error_factory) napi_delete_reference(env, d->error_factory);
  if (d->futex_poll) napi_delete_reference(env, d->futex_poll);
  if (d->mapping_env) mapping_env_unref(d->mapping_env);
  free(d);
}

/* setErrorFactory(fn): fn(errno, syscall) builds the Node-style error thrown for kernel refusals. */
static napi_value js_set_error_factory(napi_env env, napi_callback_info info) {
  addon_data *d = addon_get_data(env);
  return store_function_arg(env, info, d != NULL ? &d->error_factory : NULL);
}

static napi_value init(napi_env env, napi_value exports) {
  addon_data *d = calloc(1, sizeof *d);
  if (d == NULL) return throw_napi_failure(env, napi_generic_failure, "calloc");
  if (napi_set_instance_data(env, d, free_addon_data, NULL) != napi_ok) {
    free(d);
    return throw_napi_failure(env, napi_generic_failure, "napi_set_instance_data");
  }
  static const export_entry entries[] = {{"setErrorFactory", js_set_error_factory}};
  if (!export_functions(env, exports, entries, 1)) return throw_napi_failure(env, napi_generic_failure, "export");
  if (!init_handle(env, exports) || !init_memfd(env, exports) || !init_io(env, exports) ||
      !init_mapping(env, exports) || !init_futex(env, exports) || !init_socket(env, exports) ||
      !init_notice(env, exports) ||
      !init_pidfd(env, exports) || !init_channel(env, exports)) {
    return throw_napi_failure(env, napi_generic_failure, "module init");
  }
  return exports;
}

NAPI_MODULE_INIT() { return init(env, exports); }
