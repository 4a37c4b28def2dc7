#include "common.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

addon_data *addon_get_data(napi_env env) {
  addon_data *data = NULL;
  if (napi_get_instance_data(env, (void **)&data) != napi_ok) return NULL;
  return data;
}

static bool is_exception_pending(napi_env env) {
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  return pending;
}

static void throw_with_code(napi_env env, const char *code, const char *message, bool range) {
  if (is_exception_pending(env)) return;
  if (range) napi_throw_range_error(env, code, message);
  else napi_throw_type_error(env, code, message);
}

napi_value throw_type_error(napi_env env, const char *code, const char *message) {
  throw_with_code(env, code, message, false);
  return NULL;
}

napi_value throw_range_error(napi_env env, const char *code, const char *message) {
  throw_with_code(env, code, message, true);
  return NULL;
}

napi_value make_errno_error(napi_env env, int err, const char *syscall) {
  addon_data *data = addon_get_data(env);
  napi_value factory = NULL, argv[2], error = NULL;
  if (data != NULL && data->error_factory != NULL &&
      napi_get_reference_value(env, data->error_factory, &factory) == napi_ok && factory != NULL &&
      napi_create_int32(env, err, &argv[0]) == napi_ok &&
      napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &argv[1]) == napi_ok) {
    napi_value global;
    napi_get_global(env, &global);
    if (napi_call_function(env, global, factory, 2, argv, &error) == napi_ok && error != NULL) return error;
    if (is_exception_pending(env)) {
      napi_value ignored;
      napi_get_and_clear_last_exception(env, &ignored);
    }
  }
  /* No factory yet (or it failed): still report errno and syscall. */
  char message[160];
  snprintf(message, sizeof message, "%s failed: %s", syscall, strerror(err));
  napi_value msg, code = NULL;
  napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &msg);
  napi_create_error(env, code, msg, &error);
  return error;
}

napi_value throw_errno(napi_env env, int err, const char *syscall) {
  if (is_exception_pending(env)) return NULL;
  napi_value error = make_errno_error(env, err, syscall);
  if (error != NULL) napi_throw(env, error);
  return NULL;
}

napi_value throw_napi_failure(napi_env env, napi_status status, const char *what) {
  if (is_exception_pending(env)) return NULL;
  const napi_extended_error_info *info = NULL;
  napi_get_last_error_info(env, &info);
  char message[256];
  snprintf(message, sizeof message, "memfd internal N-API failure (%d: %s) in %s", (int)status,
           info && info->error_message ? info->error_message : "unknown", what);
  napi_throw_error(env, "ERR_MEMFD_INTERNAL", message);
  return NULL;
}

bool get_args(napi_env env, napi_callback_info info, size_t expected, napi_value *argv, napi_value *self) {
  size_t argc = expected;
  if (napi_get_cb_info(env, info, &argc, argv, self, NULL) != napi_ok) {
    throw_napi_failure(env, napi_generic_failure, "napi_get_cb_info");
    return false;
  }
  if (argc < expected) {
    napi_value undef;
    napi_get_undefined(env, &undef);
    for (size_t i = argc; i < expected; i++) argv[i] = undef;
  }
  return true;
}

static bool arg_error(napi_env env, const char *name, const char *what, bool range) {
  char message[200];
  snprintf(message, sizeof message, "The \"%s\" argument %s", name, what);
  if (range) throw_range_error(env, "ERR_OUT_OF_RANGE", message);
  else throw_type_error(env, "ERR_INVALID_ARG_TYPE", message);
  return false;
}

bool get_double_arg(napi_env env, napi_value v, double *out, const char *name) {
  if (napi_get_value_double(env, v, out) != napi_ok) return arg_error(env, name, "must be of type number", false);
  return true;
}

bool get_int32_arg(napi_env env, napi_value v, int32_t *out, const char *name) {
  double d;
  if (!get_double_arg(env, v, &d, name)) return false;
  if (!(d >= INT32_MIN && d <= INT32_MAX) || d != floor(d)) return arg_error(env, name, "must be a 32-bit integer", true);
  *out = (int32_t)d;
  return true;
}

bool get_uint32_arg(napi_env env, napi_value v, uint32_t *out, const char *name) {
  double d;
  if (!get_double_arg(env, v, &d, name)) return false;
  if (!(d >= 0 && d <= UINT32_MAX) || d != floor(d)) return arg_error(env, name, "must be an unsigned 32-bit integer", true);
  *out = (uint32_t)d;
  return true;
}

#define MAX_SAFE_INTEGER 9007199254740991.0

bool get_size_arg(napi_env env, napi_value v, int64_t *out, const char *name) {
  double d;
  if (!get_double_arg(env, v, &d, name)) return false;
  if (!(d >= 0 && d <= MAX_SAFE_INTEGER) || d != floor(d)) return arg_error(env, name, "must be a non-negative safe integer", true);
  *out = (int64_t)d;
  return true;
}

bool get_position_arg(napi_env env, napi_value v, int64_t *out, const char *name) {
  double d;
  if (!get_double_arg(env, v, &d, name)) return false;
  if (d == -1) { *out = -1; return true; }
  return get_size_arg(env, v, out, name);
}

bool get_bytes_arg(napi_env env, napi_value v, uint8_t **data, size_t *length, const char *name) {
  bool is;
  void *p = NULL;
  size_t len = 0;
  if (napi_is_typedarray(env, v, &is) == napi_ok && is) {
    napi_typedarray_type type;
    size_t count, byte_offset;
    napi_value ab;
    if (napi_get_typedarray_info(env, v, &type, &count, &p, &ab, &byte_offset) != napi_ok) goto bad;
    size_t elem = 1;
    switch (type) {
      case napi_int16_array: case napi_uint16_array: elem = 2; break;
      case napi_int32_array: case napi_uint32_array: case napi_float32_array: elem = 4; break;
      case napi_float64_array: case napi_bigint64_array: case napi_biguint64_array: elem = 8; break;
      default: elem = 1;
    }
    len = count * elem;
  } else if (napi_is_dataview(env, v, &is) == napi_ok && is) {
    napi_value ab;
    size_t byte_offset;
    if (napi_get_dataview_info(env, v, &len, &p, &ab, &byte_offset) != napi_ok) goto bad;
  } else if (napi_is_arraybuffer(env, v, &is) == napi_ok && is) {
    if (napi_get_arraybuffer_info(env, v, &p, &len) != napi_ok) goto bad;
  } else {
    goto bad;
  }
  /* A detached buffer reports NULL data and zero length; callers treat it as empty. */
  if (p == NULL) len = 0;
  *data = p;
  *length = len;
  return true;
bad:
  return arg_error(env, name, "must be an ArrayBuffer, a TypedArray, a DataView or a Buffer", false);
}

napi_value make_int32(napi_env env, int32_t v) { napi_value r = NULL; napi_create_int32(env, v, &r); return r; }
napi_value make_uint32(napi_env env, uint32_t v) { napi_value r = NULL; napi_create_uint32(env, v, &r); return r; }
napi_value make_double(napi_env env, double v) { napi_value r = NULL; napi_create_double(env, v, &r); return r; }
napi_value make_bool(napi_env env, bool v) { napi_value r = NULL; napi_get_boolean(env, v, &r); return r; }
napi_value make_undefined(napi_env env) { napi_value r = NULL; napi_get_undefined(env, &r); return r; }

bool export_functions(napi_env env, napi_value exports, const export_entry *entries, size_t count) {
  for (size_t i = 0; i < count; i++) {
    napi_value fn;
    if (napi_create_function(env, entries[i].name, NAPI_AUTO_LENGTH, entries[i].cb, NULL, &fn) != napi_ok) return false;
    if (napi_set_named_property(env, exports, entries[i].name, fn) != napi_ok) return false;
  }
  return true;
}

napi_value store_function_arg(napi_env env, napi_callback_info info, napi_ref *slot) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv, NULL)) return NULL;
  napi_valuetype type = napi_undefined;
  NAPI_OK_OR_THROW(env, napi_typeof(env, argv[0], &type));
  if (type != napi_function) return throw_type_error(env, "ERR_INVALID_ARG_TYPE", "Expected a function");
  if (slot == NULL) return throw_type_error(env, "ERR_MEMFD_INTERNAL", "callback slot unavailable");
  if (*slot != NULL) napi_delete_reference(env, *slot);
  *slot = NULL;
  NAPI_OK_OR_THROW(env, napi_create_reference(env, argv[0], 1, slot));
  return make_undefined(env);
}

void *unwrap_tagged(napi_env env, napi_value v, const napi_type_tag *tag, const char *what) {
  bool ok = false;
  void *data = NULL;
  /* No napi_typeof first: the tag check fails (napi_object_expected) for anything that is not an object,
   * and napi_get_value_external fails for objects that are not externals; the typeof cost ~13 ns of the
   * ~80 ns N-API overhead of a call. */
  if (napi_check_object_type_tag(env, v, tag, &ok) == napi_ok && ok && napi_get_value_external(env, v, &data) == napi_ok) {
    return data;
  }
  /* null/undefined make the tag check throw V8's own TypeError: replace it with ours. */
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) == napi_ok && pending) {
    napi_value ignored;
    napi_get_and_clear_last_exception(env, &ignored);
  }
  char message[96];
  snprintf(message, sizeof message, "Expected %s", what);
  throw_type_error(env, "ERR_INVALID_ARG_TYPE", message);
  return NULL;
}
