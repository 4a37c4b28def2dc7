/* Shared plumbing for the memfd addon: argument helpers and errno reporting.
 * Native code only performs syscalls and manages lifetimes; every error is handed to a JS factory
 * (registered once per env by src/binding.ts) so that messages, codes and hints live in TypeScript. */
#ifndef MEMFD_COMMON_H
#define MEMFD_COMMON_H

#include <node_api.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* fstat through the raw syscall: glibc 2.33 turned fstat into a versioned symbol (fstat64@GLIBC_2.33), which
 * would raise the glibc floor of prebuilt binaries for no gain. The kernel's struct stat is glibc's on the
 * 64-bit targets we build for. */
static inline int sys_fstat(int fd, struct stat *st) { return (int)syscall(SYS_fstat, fd, st); }

typedef struct addon_data {
  napi_ref error_factory; /* (errno: number, syscall: string) => Error */
  struct socket_registry *sockets; /* live UnixSocket handles of this env (socket.c) */
  struct futex_registry *futex_waiters; /* pending async futex waits of this env (futex.c) */
  struct map_env *mapping_env; /* this env's mapping state (mapping.c) */
  napi_ref futex_poll; /* no-op JS function a synchronous futex wait calls between slices (futex.c) */
  struct notice_queue *notices; /* warnings posted where JS cannot run (notice.c) */
} addon_data;

typedef struct notice_queue notice_queue;

/* What a notice reports (mirrored in src/warnings.ts). */
typedef enum notice_what {
  NOTICE_GC_CLOSED = 0, /* the garbage collector closed a resource the program forgot */
  NOTICE_NOT_OURS = 1,  /* a number we handed out no longer referred to our file: left alone */
} notice_what;
/* Resource kinds of notices: the fd kinds of handle.h, plus mappings. */
#define NOTICE_KIND_MAPPING 4

/* Records a notice for the env's JS warning handler; callable from finalizers and libuv callbacks of the
 * env's thread. Dropped silently once the env is going away. */
void notice_post(napi_env env, notice_what what, int kind, int fd);

addon_data *addon_get_data(napi_env env);

/* Throws the JS error built by the registered factory for a positive errno. Always returns NULL so
 * callers can `return throw_errno(...)`. */
napi_value throw_errno(napi_env env, int err, const char *syscall);
/* Builds (without throwing) the same error, for promise rejections. */
napi_value make_errno_error(napi_env env, int err, const char *syscall);
napi_value throw_type_error(napi_env env, const char *code, const char *message);
napi_value throw_range_error(napi_env env, const char *code, const char *message);

/* Throws the pending N-API failure as an Error if nothing is pending yet; returns NULL. */
napi_value throw_napi_failure(napi_env env, napi_status status, const char *what);

#define NAPI_OK_OR_THROW(env, call)                                   \
  do {                                                                \
    napi_status status__ = (call);                                    \
    if (status__ != napi_ok) return throw_napi_failure((env), status__, #call); \
  } while (0)

/* Fetch exactly `expected` arguments (missing ones are undefined). */
bool get_args(napi_env env, napi_callback_info info, size_t expected, napi_value *argv, napi_value *self);

bool get_int32_arg(napi_env env, napi_value v, int32_t *out, const char *name);
bool get_uint32_arg(napi_env env, napi_value v, uint32_t *out, const char *name);
/* A non-negative integer up to 2^53 - 1 given as a number (sizes and offsets, 64-bit end to end). */
bool get_size_arg(napi_env env, napi_value v, int64_t *out, const char *name);
/* Like get_size_arg, but -1 is accepted (meaning "current position" for I/O). */
bool get_position_arg(napi_env env, napi_value v, int64_t *out, const char *name);
bool get_double_arg(napi_env env, napi_value v, double *out, const char *name);

/* Any ArrayBuffer, SharedArrayBuffer or ArrayBufferView (Buffer, TypedArray, DataView). */
bool get_bytes_arg(napi_env env, napi_value v, uint8_t **data, size_t *length, const char *name);


napi_value make_int32(napi_env env, int32_t v);
napi_value make_uint32(napi_env env, uint32_t v);
napi_value make_double(napi_env env, double v);
napi_value make_bool(napi_env env, bool v);
napi_value make_undefined(napi_env env);

typedef struct export_entry {
  const char *name;
  napi_callback cb;
} export_entry;

bool export_functions(napi_env env, napi_value exports, const export_entry *entries, size_t count);

/* The native record behind a type-tagged external, or NULL with ERR_INVALID_ARG_TYPE ("Expected <what>")
 * thrown for anything else (null and undefined included). Every handle-taking call goes through here. */
void *unwrap_tagged(napi_env env, napi_value v, const napi_type_tag *tag, const char *what);

/* The body of a setter through which JS hands native code a callback at init (error factory, notice
 * handler, futex poll): takes the one function argument and stores a strong reference in *slot, replacing
 * the previous one. `slot` NULL (its owner is gone) throws. */
napi_value store_function_arg(napi_env env, napi_callback_info info, napi_ref *slot);

/* Module registration hooks, one per concept file. */
bool init_handle(napi_env env, napi_value exports);
bool init_memfd(napi_env env, napi_value exports);
bool init_io(napi_env env, napi_value exports);
bool init_mapping(napi_env env, napi_value exports);
bool init_futex(napi_env env, napi_value exports);
bool init_socket(napi_env env, napi_value exports);
bool init_notice(napi_env env, napi_value exports);
bool init_pidfd(napi_env env, napi_value exports);

#endif
