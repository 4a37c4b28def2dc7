/* Positional and streaming I/O on an owned fd: synchronous calls, and promise-returning calls that run
 * on the libuv thread pool.
 *
 * The async calls never let a worker thread touch JS-owned memory: writes copy the data first and reads
 * fill a buffer we allocate. A JS buffer can be detached (transferred, or a Mapping unmapped) while the
 * thread runs; touching it then would be a use-after-free or a SIGSEGV. The copy is cheap next to the
 * syscall, and the zero-copy path is the Mapping API anyway. */
#include "handle.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static ssize_t write_all(int fd, const uint8_t *p, size_t len, int64_t pos, int *err) {
  size_t done = 0;
  *err = 0;
  while (done < len) {
    ssize_t n = pos >= 0 ? pwrite(fd, p + done, len - done, (off_t)(pos + (int64_t)done)) : write(fd, p + done, len - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      *err = errno;
      break;
    }
    if (n == 0) break;
    done += (size_t)n;
  }
  return (ssize_t)done;
}

static ssize_t read_all(int fd, uint8_t *p, size_t len, int64_t pos, int *err) {
  size_t done = 0;
  *err = 0;
  while (done < len) {
    ssize_t n = pos >= 0 ? pread(fd, p + done, len - done, (off_t)(pos + (int64_t)done)) : read(fd, p + done, len - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      *err = errno;
      break;
    }
    if (n == 0) break; /* end of file */
    done += (size_t)n;
  }
  return (ssize_t)done;
}

/* Shared argument parsing: (handle, bytes, offset, length, position). */
static bool get_io_args(napi_env env, napi_value *argv, fd_handle **h, uint8_t **data, size_t *length, int64_t *pos) {
  *h = fd_handle_unwrap(env, argv[0]);
  if (*h == NULL) return false;
  uint8_t *p;
  size_t len;
  int64_t offset, count;
  if (!get_bytes_arg(env, argv[1], &p, &len, "buffer") || !get_size_arg(env, argv[2], &offset, "offset") ||
      !get_size_arg(env, argv[3], &count, "length") || !get_position_arg(env, argv[4], pos, "position"))
    return false;
  if ((uint64_t)offset > len || (uint64_t)count > len - (uint64_t)offset) {
    throw_range_error(env, "ERR_OUT_OF_RANGE", "offset + length is beyond the end of the buffer");
    return false;
  }
  *data = p + offset;
  *length = (size_t)count;
  return true;
}

/* Partial progress followed by an error reports the progress, like write(2); an error before any byte
 * moved is thrown. */
static napi_value finish_sync(napi_env env, ssize_t done, int err, const char *syscall) {
  if (done == 0 && err != 0) return throw_errno(env, err, syscall);
  return make_double(env, (double)done);
}

static napi_value js_write_sync(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  if (!get_args(env, info, 5, argv, NULL)) return NULL;
  fd_handle *h;
  uint8_t *data;
  size_t len;
  int64_t pos;
  if (!get_io_args(env, argv, &h, &data, &len, &pos)) return NULL;
  const char *syscall = pos >= 0 ? "pwrite" : "write";
  int fd = fd_handle_open_fd(env, h, syscall);
  if (fd < 0) return NULL;
  int err;
  ssize_t done = write_all(fd, data, len, pos, &err);
  return finish_sync(env, done, err, syscall);
}

static napi_value js_read_sync(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  if (!get_args(env, info, 5, argv, NULL)) return NULL;
  fd_handle *h;
  uint8_t *data;
  size_t len;
  int64_t pos;
  if (!get_io_args(env, argv, &h, &data, &len, &pos)) return NULL;
  const char *syscall = pos >= 0 ? "pread" : "read";
  int fd = fd_handle_open_fd(env, h, syscall);
  if (fd < 0) return NULL;
  int err;
  ssize_t done = read_all(fd, data, len, pos, &err);
  return finish_sync(env, done, err, syscall);
}

typedef struct io_work {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref handle_ref; /* keeps the handle (and so the fd) alive while the thread uses it */
  fd_handle *h;
  int fd;
  bool is_write;
  uint8_t *buf;
  size_t len;
  int64_t pos;
  ssize_t done;
  int err;
} io_work;

static void io_execute(napi_env env, void *data) {
  io_work *w = data;
  w->done = w->is_write ? write_all(w->fd, w->buf, w->len, w->pos, &w->err) : read_all(w->fd, w->buf, w->len, w->pos, &w->err);
}

static void free_malloced(napi_env env, void *data, void *hint) { free(data); }

static void io_complete(napi_env env, napi_status status, void *data) {
  io_work *w = data;
  fd_handle_release(w->h);
  if (w->handle_ref != NULL) napi_delete_reference(env, w->handle_ref);
  napi_delete_async_work(env, w->work);
  const char *syscall = w->is_write ? (w->pos >= 0 ? "pwrite" : "write") : (w->pos >= 0 ? "pread" : "read");
  napi_value result = NULL;
  if (status == napi_cancelled) {
    result = make_errno_error(env, ECANCELED, syscall);
    napi_reject_deferred(env, w->deferred, result);
    free(w->buf);
  } else if (w->done == 0 && w->err != 0) {
    result = make_errno_error(env, w->err, syscall);
    napi_reject_deferred(env, w->deferred, result);
    free(w->buf);
  } else if (w->is_write) {
    free(w->buf);
    napi_resolve_deferred(env, w->deferred, make_double(env, (double)w->done));
  } else {
    /* Hand the filled memory to JS without another copy; fall back to a copy where external buffers are
     * not allowed (runtimes with a V8 sandbox). */
    if (w->done == 0) {
      free(w->buf);
      napi_create_buffer(env, 0, NULL, &result);
    } else {
      napi_status st = napi_create_external_buffer(env, (size_t)w->done, w->buf, free_malloced, NULL, &result);
      if (st != napi_ok) {
        bool pending = false;
        napi_is_exception_pending(env, &pending);
        if (pending) { napi_value ignored; napi_get_and_clear_last_exception(env, &ignored); }
        result = NULL;
        if (st == napi_no_external_buffers_allowed) {
          /* Refused up front (V8 sandbox): the memory is still ours, so copy it. */
          void *copy;
          if (napi_create_buffer_copy(env, (size_t)w->done, w->buf, &copy, &result) != napi_ok) result = NULL;
          free(w->buf);
        }
        /* Any other failure (Node 20 refuses lengths above 4 GiB) has already run free_malloced on w->buf:
         * it must be neither read nor freed again. TS keeps lengths within buffer.constants.MAX_LENGTH. */
      }
    }
    if (result != NULL) napi_resolve_deferred(env, w->deferred, result);
    else napi_reject_deferred(env, w->deferred, make_errno_error(env, ENOMEM, syscall));
  }
  free(w);
}

static napi_value queue_io(napi_env env, napi_value handle, fd_handle *h, bool is_write, uint8_t *buf, size_t len, int64_t pos) {
  const char *syscall = is_write ? (pos >= 0 ? "pwrite" : "write") : (pos >= 0 ? "pread" : "read");
  io_work *w = calloc(1, sizeof *w);
  if (w == NULL) {
    free(buf);
    return throw_errno(env, ENOMEM, "malloc");
  }
  w->h = h;
  w->is_write = is_write;
  w->buf = buf;
  w->len = len;
  w->pos = pos;
  napi_value promise, name;
  napi_create_string_utf8(env, is_write ? "memfd:write" : "memfd:read", NAPI_AUTO_LENGTH, &name);
  if (napi_create_promise(env, &w->deferred, &promise) != napi_ok) {
    free(buf);
    free(w);
    return throw_napi_failure(env, napi_generic_failure, "napi_create_promise");
  }
  if (napi_create_async_work(env, NULL, name, io_execute, io_complete, w, &w->work) != napi_ok) {
    /* The promise exists: settle it, or its awaiter would hang forever. */
    napi_reject_deferred(env, w->deferred, make_errno_error(env, ENOMEM, syscall));
    free(buf);
    free(w);
    return promise;
  }
  w->fd = fd_handle_acquire(env, h, syscall);
  if (w->fd < 0) {
    napi_value err;
    napi_get_and_clear_last_exception(env, &err);
    napi_reject_deferred(env, w->deferred, err);
    napi_delete_async_work(env, w->work);
    free(buf);
    free(w);
    return promise;
  }
  if (napi_create_reference(env, handle, 1, &w->handle_ref) != napi_ok) w->handle_ref = NULL;
  if (napi_queue_async_work(env, w->work) != napi_ok) {
    fd_handle_release(h);
    if (w->handle_ref != NULL) napi_delete_reference(env, w->handle_ref);
    napi_delete_async_work(env, w->work);
    free(buf);
    free(w);
    return throw_napi_failure(env, napi_generic_failure, "napi_queue_async_work");
  }
  return promise;
}

/* writeAsync(handle, bytes, offset, length, position) -> Promise<bytesWritten> */
static napi_value js_write_async(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  if (!get_args(env, info, 5, argv, NULL)) return NULL;
  fd_handle *h;
  uint8_t *data;
  size_t len;
  int64_t pos;
  if (!get_io_args(env, argv, &h, &data, &len, &pos)) return NULL;
  uint8_t *copy = malloc(len ? len : 1);
  if (copy == NULL) return throw_errno(env, ENOMEM, "malloc");
  if (len) memcpy(copy, data, len);
  return queue_io(env, argv[0], h, true, copy, len, pos);
}

/* readAsync(handle, length, position) -> Promise<Buffer> holding the bytes actually read */
static napi_value js_read_async(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!get_args(env, info, 3, argv, NULL)) return NULL;
  fd_handle *h = fd_handle_unwrap(env, argv[0]);
  if (h == NULL) return NULL;
  int64_t len, pos;
  if (!get_size_arg(env, argv[1], &len, "length") || !get_position_arg(env, argv[2], &pos, "position")) return NULL;
  if ((uint64_t)len > SIZE_MAX / 2) return throw_range_error(env, "ERR_OUT_OF_RANGE", "length is too large");
  uint8_t *buf = malloc(len ? (size_t)len : 1);
  if (buf == NULL) return throw_errno(env, ENOMEM, "malloc");
  return queue_io(env, argv[0], h, false, buf, (size_t)len, pos);
}

bool init_io(napi_env env, napi_value exports) {
  static const export_entry entries[] = {
      {"writeSync", js_write_sync},
      {"readSync", js_read_sync},
      {"writeAsync", js_write_async},
      {"readAsync", js_read_async},
  };
  return export_functions(env, exports, entries, sizeof entries / sizeof entries[0]);
}
