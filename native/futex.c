/* futex(2) wait/wake on 32-bit words inside a mapping: cross-process wait/notify.
 *
 * Why not Atomics.wait: V8 emulates it inside one process; a notify from another process never arrives.
 * The futex calls here omit FUTEX_PRIVATE_FLAG, so the kernel keys the wait by (inode, offset) for a
 * MAP_SHARED mapping and every process mapping the same file meets on the same futex.
 *
 * Async waits use one dedicated thread per pending wait, not the libuv thread pool: a wait can last
 * forever, and four of them would otherwise starve fs, dns and zlib work of the whole process. Each
 * thread reports back through its own napi_threadsafe_function.
 *
 * Cancellation (the hard part). A thread blocked in FUTEX_WAIT can only be released by a FUTEX_WAKE on
 * the same address, and only while that address is still mapped: after munmap nothing could ever wake it
 * (an infinite wait would then pin a thread forever, and a Worker's teardown would hang or crash). So:
 *  - every path that munmaps a mapping first calls futex_cancel_waiters(), which flags the waits as
 *    cancelled and keeps waking the address until each thread has left the syscall (the thread checks
 *    the flag before every wait, so a wake that races with its entry is repeated until it lands);
 *  - each pending wait registers an env cleanup hook, registered after its threadsafe function, so it
 *    runs before Node tears that function down (hooks run in reverse order): it cancels and joins the
 *    thread, and the thread never touches a destroyed threadsafe function.
 * The cancelling wakes are visible to other waiters on the same word (other processes too) as spurious
 * wakeups, which futex users must tolerate anyway: a woken waiter re-checks the value. */
#include "constants.h"
#include "mapping.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <math.h>
#include <uv.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

enum { FW_OK, FW_NOT_EQUAL, FW_TIMED_OUT, FW_CANCELLED, FW_ERROR };

typedef struct futex_waiter {
  struct futex_waiter *next; /* in the mapping's list; main thread only */
  map_record *rec;           /* holds a reference, so the record outlives the wait */
  uint32_t *addr;
  uint32_t expected;
  bool has_deadline;
  struct timespec deadline; /* CLOCK_MONOTONIC, absolute */
  napi_threadsafe_function tsfn;
  napi_deferred deferred;
  uv_thread_t thread;
  bool joined;
  bool hook_pending;         /* the env cleanup hook is registered and has not run */
  atomic_int cancelled;
  atomic_int finished;       /* the thread will not enter the futex syscall again */
  int result;
  int err;
} futex_waiter;

static long futex_wait(uint32_t *addr, uint32_t expected, const struct timespec *abs_deadline) {
  /* FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC deadline, so a retry after EINTR keeps the
   * original timeout instead of restarting it. */
  return syscall(SYS_futex, addr, FUTEX_WAIT_BITSET, expected, abs_deadline, NULL, FUTEX_BITSET_MATCH_ANY);
}

static long futex_wake(uint32_t *addr, int count) {
  return syscall(SYS_futex, addr, FUTEX_WAKE, count, NULL, NULL, 0);
}

static int classify(long rc, int err) {
  if (rc == 0) return FW_OK;
  if (err == EAGAIN) return FW_NOT_EQUAL;
  if (err == ETIMEDOUT) return FW_TIMED_OUT;
  return FW_ERROR;
}

static napi_value result_string(napi_env env, int result) {
  static const char *names[] = {[FW_OK] = MEMFD_FUTEX_RESULT_OK, [FW_NOT_EQUAL] = MEMFD_FUTEX_RESULT_NOT_EQUAL,
                                [FW_TIMED_OUT] = MEMFD_FUTEX_RESULT_TIMED_OUT, [FW_CANCELLED] = MEMFD_FUTEX_RESULT_UNMAPPED};
  napi_value s = NULL;
  napi_create_string_utf8(env, names[result], NAPI_AUTO_LENGTH, &s);
  return s;
}

static bool make_deadline(double timeout_ms, bool *has, struct timespec *deadline) {
  /* Negative means "no timeout" (TS validated the value; Infinity arrives as -1). Beyond ~31 years the
   * deadline would overflow the kernel's ktime anyway: wait without one. Also catches NaN. */
  if (!(timeout_ms >= 0 && timeout_ms < 1e12)) {
    *has = false;
    return true;
  }
  *has = true;
  clock_gettime(CLOCK_MONOTONIC, deadline);
  double secs = floor(timeout_ms / 1000.0);
  long nsec = (long)((timeout_ms - secs * 1000.0) * 1e6);
  deadline->tv_sec += (time_t)secs;
  deadline->tv_nsec += nsec;
  while (deadline->tv_nsec >= 1000000000L) {
    deadline->tv_sec++;
    deadline->tv_nsec -= 1000000000L;
  }
  return true;
}

/* The futex word a view and index designate, checked to lie inside the live mapping. */
static uint32_t *get_word(napi_env env, map_record *r, napi_value view, napi_value vindex) {
  bool is = false;
  napi_typedarray_type type;
  size_t count = 0, byte_offset;
  void *data = NULL;
  napi_value ab;
  if (napi_is_typedarray(env, view, &is) != napi_ok || !is ||
      napi_get_typedarray_info(env, view, &type, &count, &data, &ab, &byte_offset) != napi_ok || type != napi_int32_array) {
    throw_type_error(env, "ERR_INVALID_ARG_TYPE", "The \"view\" argument must be an Int32Array");
    return NULL;
  }
  uint32_t index;
  if (!get_uint32_arg(env, vindex, &index, "index")) return NULL;
  if (!r->mapped) {
    napi_throw_error(env, "ERR_MEMFD_UNMAPPED", "The mapping has been unmapped");
    return NULL;
  }
  if (data == NULL || index >= count) {
    throw_range_error(env, "ERR_OUT_OF_RANGE", "The \"index\" argument is beyond the end of the view");
    return NULL;
  }
  uint8_t *p = (uint8_t *)data + (size_t)index * 4;
  if (p < r->data || p + 4 > r->data + r->length) {
    throw_type_error(env, "ERR_INVALID_ARG_VALUE", "The \"view\" argument must be a view of this mapping's buffer");
    return NULL;
  }
  /* The kernel refuses unaligned futex words with EINVAL; say why before asking it. */
  if (((uintptr_t)p & 3) != 0) {
    throw_range_error(env, "ERR_OUT_OF_RANGE",
                      "The futex word is not 4-byte aligned (the mapping starts at an offset that is not a multiple of 4)");
    return NULL;
  }
  /* Same word through the shared read-only twin of a copy-on-write mapping (why: mapping.c). */
  if (r->futex_base != NULL) p = r->futex_base + (p - r->base);
  return (uint32_t *)p;
}

/* A synchronous wait sleeps in slices of at most this long, and calls into JS between them: V8 only
 * notices Worker.terminate() (TerminateExecution) when JS runs, so a wait without a timeout in a Worker
 * would otherwise block its termination, and process.exit() which joins Workers, forever. */
#define WAIT_SLICE_NS 100000000L

static int timespec_cmp(const struct timespec *a, const struct timespec *b) {
  if (a->tv_sec != b->tv_sec) return a->tv_sec < b->tv_sec ? -1 : 1;
  return a->tv_nsec < b->tv_nsec ? -1 : a->tv_nsec > b->tv_nsec;
}

/* Calls the no-op JS function registered by src/binding.ts (setFutexPoll): JS bytecode, so that V8 handles
 * pending interrupts on entry. False when the env is being terminated or otherwise cannot run JS any
 * more, and the wait must end now. Worker.terminate() first marks the env as stopping, and Node-API then
 * refuses to call JS at all (napi_pending_exception with nothing pending); V8's termination itself is
 * only handled once JS runs. */
static bool env_still_running(napi_env env, napi_ref poll) {
  napi_value fn, global, ignored;
  if (napi_get_reference_value(env, poll, &fn) != napi_ok || fn == NULL) return false;
  return napi_get_global(env, &global) == napi_ok && napi_call_function(env, global, fn, 0, NULL, &ignored) == napi_ok;
}

/* setFutexPoll(fn): the function a synchronous wait calls between slices (see env_still_running). Handed
 * over from JS, like the error factory, rather than compiled here from source. */
static napi_value js_set_futex_poll(napi_env env, napi_callback_info info) {
  addon_data *d = addon_get_data(env);
  return store_function_arg(env, info, d != NULL ? &d->futex_poll : NULL);
}

/* The arguments both waits share: (mapping, view, index, expected, timeoutMs). */
typedef struct wait_args {
  map_record *rec;
  uint32_t *addr;
  int32_t expected;
  bool has_deadline;        /* false: wait without a timeout */
  struct timespec deadline; /* CLOCK_MONOTONIC */
} wait_args;

static bool get_wait_args(napi_env env, napi_callback_info info, wait_args *a) {
  napi_value argv[5];
  if (!get_args(env, info, 5, argv, NULL)) return false;
  a->rec = mapping_unwrap(env, argv[0]);
  if (a->rec == NULL) return false;
  double timeout;
  if (!get_int32_arg(env, argv[3], &a->expected, "expected") || !get_double_arg(env, argv[4], &timeout, "timeout"))
    return false;
  a->addr = get_word(env, a->rec, argv[1], argv[2]);
  if (a->addr == NULL) return false;
  make_deadline(timeout, &a->has_deadline, &a->deadline);
  return true;
}

/* futexWait(mapping, view, index, expected, timeoutMs) -> 'ok' | 'not-equal' | 'timed-out' (blocking) */
static napi_value js_futex_wait(napi_env env, napi_callback_info info) {
  addon_data *d = addon_get_data(env);
  if (d == NULL || d->futex_poll == NULL) {
    /* Without it a wait in a Worker could not notice Worker.terminate(): refuse rather than hang. */
    return throw_type_error(env, "ERR_MEMFD_INTERNAL", "futexWait needs setFutexPoll() first (src/binding.ts)");
  }
  wait_args args;
  if (!get_wait_args(env, info, &args)) return NULL;
  map_record *r = args.rec;
  uint32_t *addr = args.addr;
  int32_t expected = args.expected;
  bool has = args.has_deadline;
  struct timespec deadline = args.deadline;
  /* 'not-equal' only when the value differs on entry. A value that changed while we slept between two
   * slices means a wake may have fallen between them: report 'ok' (callers re-check the value anyway). */
  bool slept = false;
  int result, err = 0;
  for (;;) {
    struct timespec slice;
    clock_gettime(CLOCK_MONOTONIC, &slice);
    slice.tv_nsec += WAIT_SLICE_NS;
    if (slice.tv_nsec >= 1000000000L) {
      slice.tv_sec++;
      slice.tv_nsec -= 1000000000L;
    }
    bool last = has && timespec_cmp(&deadline, &slice) <= 0;
    long rc = futex_wait(addr, (uint32_t)expected, last ? &deadline : &slice);
    err = errno;
    if (rc != 0 && err == EINTR) continue; /* the absolute deadline stays */
    if (rc != 0 && err == ETIMEDOUT && !last) {
      /* Terminating: return undefined (src/futex.ts throws, so no caller carries on as if woken), or
       * NULL with the termination pending if V8 raised it in the poll. */
      if (!env_still_running(env, d->futex_poll)) return NULL;
      if (!r->mapped) { /* JS run by an interrupt unmapped it meanwhile */
        napi_throw_error(env, "ERR_MEMFD_UNMAPPED", "The mapping was unmapped while futexWait was waiting");
        return NULL;
      }
      slept = true;
      continue;
    }
    result = classify(rc, err);
    if (result == FW_NOT_EQUAL && slept) result = FW_OK;
    break;
  }
  if (result == FW_ERROR) return throw_errno(env, err, "futex");
  return result_string(env, result);
}

/* futexWake(mapping, view, index, count) -> number of waiters woken */
static napi_value js_futex_wake(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  if (!get_args(env, info, 4, argv, NULL)) return NULL;
  map_record *r = mapping_unwrap(env, argv[0]);
  if (r == NULL) return NULL;
  uint32_t count;
  if (!get_uint32_arg(env, argv[3], &count, "count")) return NULL;
  uint32_t *addr = get_word(env, r, argv[1], argv[2]);
  if (addr == NULL) return NULL;
  long rc = futex_wake(addr, count > INT_MAX ? INT_MAX : (int)count);
  if (rc < 0) return throw_errno(env, errno, "futex");
  return make_double(env, (double)rc);
}

static void *wait_thread(void *arg) {
  futex_waiter *w = arg;
  /* Copied: once the call below is queued, the main thread may free w. */
  napi_threadsafe_function tsfn = w->tsfn;
  for (;;) {
    if (atomic_load(&w->cancelled)) {
      w->result = FW_CANCELLED;
      break;
    }
    long rc = futex_wait(w->addr, w->expected, w->has_deadline ? &w->deadline : NULL);
    int err = errno;
    if (rc != 0 && err == EINTR) continue;
    w->result = classify(rc, err);
    w->err = err;
    if (w->result == FW_OK && atomic_load(&w->cancelled)) w->result = FW_CANCELLED;
    break;
  }
  atomic_store(&w->finished, 1);
  napi_call_threadsafe_function(tsfn, w, napi_tsfn_blocking);
  napi_release_threadsafe_function(tsfn, napi_tsfn_release);
  return NULL;
}

static void wait_thread_entry(void *arg) { wait_thread(arg); }

static void cancel_one(futex_waiter *w) {
  atomic_store(&w->cancelled, 1);
  /* Wake until the thread is out: a wake that lands before it enters FUTEX_WAIT is lost, but the next
   * one finds it there (it checks the flag before waiting). The address is mapped on every path that
   * gets here, so this ends; typically on the first wake. */
  while (!atomic_load(&w->finished)) {
    futex_wake(w->addr, INT_MAX);
    if (atomic_load(&w->finished)) break;
    struct timespec pause = {0, 200000};
    nanosleep(&pause, NULL);
  }
}

void futex_cancel_waiters(map_record *r) {
  for (futex_waiter *w = r->waiters; w != NULL; w = w->next) cancel_one(w);
}

static void join_once(futex_waiter *w) {
  if (!w->joined) {
    uv_thread_join(&w->thread);
    w->joined = true;
  }
}

/* The env is going away (Worker terminated, process exiting) with this wait pending. */
static void cleanup_hook(void *arg) {
  futex_waiter *w = arg;
  w->hook_pending = false;
  cancel_one(w);
  join_once(w);
}

static void unlink_waiter(futex_waiter *w) {
  for (futex_waiter **pp = &w->rec->waiters; *pp != NULL; pp = &(*pp)->next) {
    if (*pp == w) {
      *pp = w->next;
      break;
    }
  }
}

/* Runs on the JS thread; env is NULL when Node drains the queue during teardown (after cleanup_hook). */
static void call_js(napi_env env, napi_value js_cb, void *context, void *data) {
  futex_waiter *w = data;
  join_once(w);
  if (env != NULL && w->hook_pending) napi_remove_env_cleanup_hook(env, cleanup_hook, w);
  w->hook_pending = false;
  unlink_waiter(w);
  if (env != NULL) {
    if (w->result == FW_ERROR) {
      napi_reject_deferred(env, w->deferred, make_errno_error(env, w->err, "futex"));
    } else {
      napi_resolve_deferred(env, w->deferred, result_string(env, w->result));
    }
  }
  mapping_unref(w->rec);
  free(w);
}

/* futexWaitAsync(mapping, view, index, expected, timeoutMs) -> Promise<'ok'|'not-equal'|'timed-out'|'unmapped'> */
static napi_value js_futex_wait_async(napi_env env, napi_callback_info info) {
  wait_args args;
  if (!get_wait_args(env, info, &args)) return NULL;
  map_record *r = args.rec;

  futex_waiter *w = calloc(1, sizeof *w);
  if (w == NULL) return throw_errno(env, ENOMEM, "malloc");
  w->addr = args.addr;
  w->expected = (uint32_t)args.expected;
  w->has_deadline = args.has_deadline;
  w->deadline = args.deadline;
  napi_value promise, name;
  if (napi_create_promise(env, &w->deferred, &promise) != napi_ok) {
    free(w);
    return throw_napi_failure(env, napi_generic_failure, "napi_create_promise");
  }
  napi_create_string_utf8(env, "memfd:futexWaitAsync", NAPI_AUTO_LENGTH, &name);
  if (napi_create_threadsafe_function(env, NULL, NULL, name, 0, 1, NULL, NULL, NULL, call_js, &w->tsfn) != napi_ok) {
    napi_reject_deferred(env, w->deferred, make_errno_error(env, ENOMEM, "futex"));
    free(w);
    return promise;
  }
  /* Registered after the threadsafe function so that it runs before Node destroys it (LIFO). */
  if (napi_add_env_cleanup_hook(env, cleanup_hook, w) != napi_ok) {
    napi_release_threadsafe_function(w->tsfn, napi_tsfn_abort);
    napi_reject_deferred(env, w->deferred, make_errno_error(env, ENOMEM, "futex"));
    free(w);
    return promise;
  }
  w->hook_pending = true;
  w->rec = r;
  mapping_ref(r);
  w->next = r->waiters;
  r->waiters = w;

  /* The thread takes no signals: Node's handlers expect them on the main thread (libuv's pool threads
   * block them the same way), and EINTR churn would only cost wakeups. The thread inherits the mask in
   * force while it is created. libuv's thread functions (exported by Node) are used instead of pthread_*
   * directly: glibc 2.34 versioned those symbols, which would raise the glibc floor of prebuilt binaries;
   * sigprocmask is per-thread on Linux. */
  sigset_t all, old;
  sigfillset(&all);
  uv_thread_options_t options = {.flags = UV_THREAD_HAS_STACK_SIZE, .stack_size = 256 * 1024};
  sigprocmask(SIG_SETMASK, &all, &old);
  int err = -uv_thread_create_ex(&w->thread, &options, wait_thread_entry, w);
  sigprocmask(SIG_SETMASK, &old, NULL);
  if (err != 0) {
    unlink_waiter(w);
    mapping_unref(r);
    napi_remove_env_cleanup_hook(env, cleanup_hook, w);
    napi_release_threadsafe_function(w->tsfn, napi_tsfn_abort);
    napi_reject_deferred(env, w->deferred, make_errno_error(env, err, "uv_thread_create"));
    free(w);
    return promise;
  }
  return promise;
}

bool init_futex(napi_env env, napi_value exports) {
  static const export_entry entries[] = {
      {"futexWait", js_futex_wait},
      {"futexWake", js_futex_wake},
      {"futexWaitAsync", js_futex_wait_async},
      {"setFutexPoll", js_set_futex_poll},
  };
  return export_functions(env, exports, entries, sizeof entries / sizeof entries[0]);
}
