#include "handle.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const napi_type_tag FD_HANDLE_TAG = {0x6d656d6664686e64ULL, 0x9b1f5e0c2a7d4431ULL};

/* Which fd numbers are owned by a handle, process-wide (fds are per process, handles live in any
 * env/thread). It lets adoption refuse an fd that a handle already owns: two owners would mean two
 * close() calls, and the second would close whatever file reused the number in between.
 * An entry is NULL (not owned), OWNED_ANON (owned by something that is not an fd handle: a socket), or
 * the fd_handle that owns the number. A handle is freed only after its entry has been cleared or
 * overwritten under owned_lock (really_close, detach, hand-over), so an entry never dangles. Another
 * thread may read only the immutable fields (env, claimable) of a handle found here. */
static pthread_mutex_t owned_lock = PTHREAD_MUTEX_INITIALIZER;
static fd_handle **owned_fds;
static size_t owned_capacity;
static fd_handle owned_anon_marker;
#define OWNED_ANON (&owned_anon_marker)

/* Caller holds owned_lock. */
static bool owned_set(int fd, fd_handle *owner) {
  if ((size_t)fd >= owned_capacity) {
    if (owner == NULL) return true;
    size_t capacity = owned_capacity ? owned_capacity : 1024;
    while (capacity <= (size_t)fd) capacity *= 2;
    fd_handle **grown = realloc(owned_fds, capacity * sizeof *grown);
    if (grown == NULL) return false;
    memset(grown + owned_capacity, 0, (capacity - owned_capacity) * sizeof *grown);
    owned_fds = grown;
    owned_capacity = capacity;
  }
  owned_fds[fd] = owner;
  return true;
}

/* Caller holds owned_lock. */
static fd_handle *owned_get(int fd) {
  return fd >= 0 && (size_t)fd < owned_capacity ? owned_fds[fd] : NULL;
}

/* Caller holds owned_lock. The received handle of `env` that owns fd and may hand it over, or NULL. env
 * and claimable are immutable, so checking them is safe whatever thread owns the handle; the other fields
 * are read only once we know the handle belongs to the calling thread's env. */
static fd_handle *claimable_locked(napi_env env, int fd) {
  fd_handle *h = owned_get(fd);
  if (h == NULL || h == OWNED_ANON || h->env != env || !h->claimable) return NULL;
  if (h->closed || h->fd != fd || h->in_flight > 0 || h->pins > 0) return NULL;
  return h;
}

fd_handle *fd_owned_claim(napi_env env, int fd) {
  pthread_mutex_lock(&owned_lock);
  fd_handle *h = claimable_locked(env, fd);
  /* Still owned (by the claimer now): no other thread can adopt the number in between. */
  if (h != NULL) owned_fds[fd] = OWNED_ANON;
  pthread_mutex_unlock(&owned_lock);
  return h;
}

void fd_owned_unclaim(fd_handle *h, int fd) {
  pthread_mutex_lock(&owned_lock);
  owned_fds[fd] = h;
  pthread_mutex_unlock(&owned_lock);
}

void fd_handle_empty(fd_handle *h) {
  h->fd = -1;
  h->closed = true;
}

void fd_owned_close(int fd) {
  /* close and forget under one lock, so a number the kernel hands out again right after close() is
   * only ever marked by its new owner after we have unmarked it. */
  pthread_mutex_lock(&owned_lock);
  /* Linux always releases the descriptor, even when close reports EINTR: never retry. */
  close(fd);
  owned_set(fd, NULL);
  pthread_mutex_unlock(&owned_lock);
}

bool fd_owned_is(int fd) {
  pthread_mutex_lock(&owned_lock);
  bool is_owned = owned_get(fd) != NULL;
  pthread_mutex_unlock(&owned_lock);
  return is_owned;
}

bool fd_owned_mark(int fd) {
  pthread_mutex_lock(&owned_lock);
  bool ok = owned_set(fd, OWNED_ANON);
  pthread_mutex_unlock(&owned_lock);
  return ok;
}

void fd_owned_forget(int fd) {
  pthread_mutex_lock(&owned_lock);
  owned_set(fd, NULL);
  pthread_mutex_unlock(&owned_lock);
}

static void really_close(fd_handle *h) {
  if (h->fd >= 0) {
    fd_owned_close(h->fd);
    h->fd = -1;
  }
}

static void maybe_free(fd_handle *h) {
  if (h->finalized && h->in_flight == 0) free(h);
}

static void finalize_handle(napi_env env, void *data, void *hint) {
  fd_handle *h = data;
  h->closed = true;
  h->finalized = true;
  if (h->in_flight == 0) really_close(h);
  maybe_free(h);
}

/* Gives the table entry of fd back to whoever owned it before a failed wrap. */
static void give_back(int fd, fd_handle *previous) {
  pthread_mutex_lock(&owned_lock);
  owned_set(fd, previous);
  pthread_mutex_unlock(&owned_lock);
}

static napi_value wrap(napi_env env, int fd, fd_handle **out, bool adopting, bool claimable) {
  fd_handle *h = calloc(1, sizeof *h);
  if (h == NULL) {
    throw_errno(env, ENOMEM, "malloc");
    return NULL;
  }
  h->fd = fd;
  h->env = env;
  h->claimable = claimable;
  /* A received fd still owned by its message in this env is handed over: the message's handle is
   * emptied on success, so its later close or finalizer does nothing. */
  fd_handle *previous = NULL;
  pthread_mutex_lock(&owned_lock);
  if (adopting && owned_get(fd) != NULL) {
    previous = claimable_locked(env, fd);
    if (previous == NULL) {
      pthread_mutex_unlock(&owned_lock);
      free(h);
      napi_throw_error(env, "ERR_MEMFD_FD_ALREADY_OWNED",
                       "This fd is already owned by another memfd object in this process; use its dup() instead");
      return NULL;
    }
  }
  /* A fresh fd from the kernel is ours whatever the table says: if it was marked, its previous owner's
   * fd was closed behind its back (e.g. fs.closeSync(file.fd)), which nothing here can undo. */
  bool marked = owned_set(fd, h);
  pthread_mutex_unlock(&owned_lock);
  if (!marked) {
    free(h);
    throw_errno(env, ENOMEM, "malloc");
    return NULL;
  }
  napi_value external;
  if (napi_create_external(env, h, finalize_handle, NULL, &external) != napi_ok) {
    give_back(fd, previous);
    free(h);
    throw_napi_failure(env, napi_generic_failure, "napi_create_external");
    return NULL;
  }
  if (napi_type_tag_object(env, external, &FD_HANDLE_TAG) != napi_ok) {
    /* The finalizer owns h now; make sure it does not close the caller's fd. */
    give_back(fd, previous);
    fd_handle_empty(h);
    throw_napi_failure(env, napi_generic_failure, "napi_type_tag_object");
    return NULL;
  }
  if (previous != NULL) fd_handle_empty(previous);
  if (out) *out = h;
  return external;
}

napi_value fd_handle_wrap(napi_env env, int fd, fd_handle **out) { return wrap(env, fd, out, false, false); }

napi_value fd_handle_wrap_received(napi_env env, int fd) { return wrap(env, fd, NULL, false, true); }

napi_value fd_handle_adopt(napi_env env, int fd, fd_handle **out) { return wrap(env, fd, out, true, false); }

fd_handle *fd_handle_unwrap(napi_env env, napi_value v) {
  bool ok = false;
  void *data = NULL;
  /* No napi_typeof first: the tag check fails (napi_object_expected) for anything that is not an object,
   * and napi_get_value_external fails for objects that are not externals. Every handle-taking call goes
   * through here; the redundant typeof cost ~13 ns of the ~80 ns N-API overhead of a call. */
  if (napi_check_object_type_tag(env, v, &FD_HANDLE_TAG, &ok) == napi_ok && ok &&
      napi_get_value_external(env, v, &data) == napi_ok) {
    return data;
  }
  /* null/undefined make the tag check throw V8's own TypeError: replace it with ours. */
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) == napi_ok && pending) {
    napi_value ignored;
    napi_get_and_clear_last_exception(env, &ignored);
  }
  throw_type_error(env, "ERR_INVALID_ARG_TYPE", "Expected a memfd native handle");
  return NULL;
}

int fd_handle_open_fd(napi_env env, fd_handle *h, const char *syscall) {
  if (h->closed) {
    throw_errno(env, EBADF, syscall);
    return -1;
  }
  return h->fd;
}

int fd_handle_acquire(napi_env env, fd_handle *h, const char *syscall) {
  int fd = fd_handle_open_fd(env, h, syscall);
  if (fd >= 0) h->in_flight++;
  return fd;
}

void fd_handle_release(fd_handle *h) {
  h->in_flight--;
  if (h->in_flight == 0 && (h->pins == 0 || h->finalized) && h->closed) really_close(h);
  maybe_free(h);
}

bool fd_handle_pin(napi_env env, fd_handle *h, const char *syscall) {
  if (fd_handle_open_fd(env, h, syscall) < 0) return false;
  h->pins++;
  return true;
}

void fd_handle_unpin(fd_handle *h) {
  if (h->pins == 0) return;
  h->pins--;
  if (h->pins == 0 && h->in_flight == 0 && h->closed) really_close(h);
}

/* handleFd(handle) -> fd number, or -1 once closed */
static napi_value js_handle_fd(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv, NULL)) return NULL;
  fd_handle *h = fd_handle_unwrap(env, argv[0]);
  if (h == NULL) return NULL;
  return make_int32(env, h->closed ? -1 : h->fd);
}

/* handleClose(handle) -> true when this call closed it, false when it was already closed */
static napi_value js_handle_close(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv, NULL)) return NULL;
  fd_handle *h = fd_handle_unwrap(env, argv[0]);
  if (h == NULL) return NULL;
  if (h->closed) return make_bool(env, false);
  h->closed = true;
  if (h->in_flight == 0 && h->pins == 0) really_close(h);
  return make_bool(env, true);
}

/* handleAdopt(fd) -> handle that owns fd (the caller has checked that fd is open) */
static napi_value js_handle_adopt(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv, NULL)) return NULL;
  int32_t fd;
  if (!get_int32_arg(env, argv[0], &fd, "fd")) return NULL;
  if (fd < 0) return throw_range_error(env, "ERR_OUT_OF_RANGE", "The \"fd\" argument must be >= 0");
  return fd_handle_adopt(env, fd, NULL);
}

/* closeFd(fd): close a raw fd we received but will not adopt */
static napi_value js_close_fd(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv, NULL)) return NULL;
  int32_t fd;
  if (!get_int32_arg(env, argv[0], &fd, "fd")) return NULL;
  if (fd_owned_is(fd)) {
    napi_throw_error(env, "ERR_MEMFD_FD_ALREADY_OWNED", "This fd is owned by a memfd object; close that object instead");
    return NULL;
  }
  if (close(fd) != 0 && errno != EINTR) return throw_errno(env, errno, "close");
  return make_undefined(env);
}

bool init_handle(napi_env env, napi_value exports) {
  static const export_entry entries[] = {
      {"handleFd", js_handle_fd},
      {"handleClose", js_handle_close},
      {"handleAdopt", js_handle_adopt},
      {"closeFd", js_close_fd},
  };
  return export_functions(env, exports, entries, sizeof entries / sizeof entries[0]);
}
