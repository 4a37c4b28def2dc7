/* Channel support (src/channel.ts): sleeping on the channel's futex without a thread per wait, noticing
 * the peer's death, and zero-copy windows over the rings.
 *
 * The data path (copying frames, indices, flags) is plain JS with Atomics over a Mapping; only what JS
 * cannot do lives here:
 *  - One waiter thread per channel end, started on the first wait. It sleeps in FUTEX_WAIT on this end's
 *    "bell" word while JS has armed it, and on a condition variable otherwise; when the bell changes it
 *    reports through a uv_async_t on the env's own loop. An idle channel is a blocked thread: no CPU.
 *  - A pidfd (pidfd_open(2)) of the peer, watched by a uv_poll_t: readable when the peer exits.
 *  - External ArrayBuffers over part of a ring (a reserved frame, a received payload), detached by JS when
 *    the loan or view ends, so that a released view can never show bytes the writer has reused.
 *  - membarrier(2): registration once per process, and the barrier a sleeper runs when the peer publishes
 *    without a fence (docs/channel.md, "Publishing without a fence").
 *
 * Lifetime rules:
 *  - The thread waits on a private mapping of the header page made here, not on the Mapping's buffer: that
 *    buffer may be collected (its pages replaced by a placeholder, mapping.c) while the thread sleeps, and a
 *    futex on a replaced page can never be woken. This page is unmapped only after the thread is joined.
 *  - A chan_end has three owners: the JS external (finalizer), the uv_async_t and the uv_poll_t (their
 *    uv_close callbacks). Memory is freed when all three are gone, in any order.
 *  - The thread is joined before uv_close(async): it may call uv_async_send until it has exited.
 *  - The pidfd is closed only in the poll handle's close callback (never while epoll watches it).
 *  - The callback into JS is referenced strongly (and the async handle keeps the loop alive) only while a
 *    wait is armed: an idle channel neither keeps the process alive nor escapes garbage collection.
 *  - An async env cleanup hook closes the end when its env goes away (Worker.terminate(), exit): it marks the
 *    end closed in shared memory and rings the peer, so the peer sees the end of the stream.
 *  - Windows hold a reference on the mapping record (mapping.c), dropped by their finalizer, and count as
 *    live windows until then: the pages stay mapped while any window lives, even after the Mapping's
 *    unmap(), because a window moved away with ArrayBuffer.prototype.transfer() (Node 22+) before we could
 *    detach it still shows them. */
#include "mapping.h"

#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <linux/futex.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <uv.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
/* Spelled out: the prebuilds' old sysroots have no <linux/membarrier.h> (Linux 4.3) or no GLOBAL_EXPEDITED (4.16). */
#ifndef SYS_membarrier
#if defined(__x86_64__)
#define SYS_membarrier 324
#elif defined(__aarch64__)
#define SYS_membarrier 283
#else
#define SYS_membarrier -1 /* unknown here: syscall(-1) fails with ENOSYS, and the ends keep their fences */
#endif
#endif
enum { MEMBARRIER_GLOBAL_EXPEDITED = 1 << 1, MEMBARRIER_REGISTER_GLOBAL_EXPEDITED = 1 << 2 };

#define HEADER_BYTES 4096

/* EVENT_BELL_SUPERSEDED: the thread reported a bell change, but before the report reached the loop JS
 * ended that wait by itself (its late look, src/channel.ts #fenceAndLookAgain, found the message) and armed
 * again: the report is about a wait that no longer exists, and the thread is armed for the new one. */
enum { EVENT_BELL = 1, EVENT_PEER_EXIT = 2, EVENT_BELL_SUPERSEDED = 3 };

static const napi_type_tag CHANNEL_TAG = {0x6d656d6664636861ULL, 0x9a41c3e25b7d0f66ULL};

typedef struct chan_end {
  napi_env env;
  uint8_t *header;           /* private MAP_SHARED mapping of the header page */
  _Atomic uint32_t *bell;    /* this end sleeps on it */
  _Atomic uint32_t *peer_bell;
  _Atomic uint32_t *closed;  /* this end's closed flag */
  napi_ref callback;         /* (event) => void; strong only while armed */
  bool callback_strong;

  uv_async_t async;
  bool async_open, async_closed;
  uv_poll_t poll;
  int pidfd;                 /* -1 when not watching */
  bool poll_open, poll_closed;
  bool finalized;
  bool shut;                 /* end_shutdown ran */
  napi_async_cleanup_hook_handle hook;
  bool hook_registered;

  /* Waiter thread; the fields below are shared with it under `lock`. */
  uv_thread_t thread;
  bool thread_started;
  uv_mutex_t lock;
  uv_cond_t cond;
  bool armed;
  bool stopping;
  uint32_t expected;
  uint32_t arm_seq;
  atomic_int thread_done;
} chan_end;

static long futex_wait_shared(_Atomic uint32_t *addr, uint32_t expected) {
  return syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT, expected, NULL, NULL, 0);
}

static long futex_wake_shared(_Atomic uint32_t *addr) {
  return syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

static void waiter_thread(void *arg) {
  chan_end *c = arg;
  uv_mutex_lock(&c->lock);
  for (;;) {
    if (c->stopping) break;
    if (!c->armed) {
      uv_cond_wait(&c->cond, &c->lock);
      continue;
    }
    uint32_t expected = c->expected, seq = c->arm_seq;
    uv_mutex_unlock(&c->lock);
    /* A wake aimed at this thread that lands before it enters the syscall is lost; stop retries it and a
     * re-arm needs none: the bell only grows, so an older expected value still equal to it is current. */
    futex_wait_shared(c->bell, expected);
    uv_mutex_lock(&c->lock);
    if (c->stopping) break;
    if (c->armed && c->arm_seq == seq && atomic_load(c->bell) != expected) {
      c->armed = false;
      uv_async_send(&c->async);
    }
  }
  uv_mutex_unlock(&c->lock);
  atomic_store(&c->thread_done, 1);
}

static void maybe_free(chan_end *c) {
  if (!c->finalized) return;
  if (c->async_open && !c->async_closed) return;
  if (c->poll_open && !c->poll_closed) return;
  if (c->hook_registered) return;
  uv_mutex_destroy(&c->lock);
  uv_cond_destroy(&c->cond);
  free(c);
}

static void set_callback_strong(chan_end *c, bool strong) {
  if (c->callback == NULL || c->callback_strong == strong) return;
  uint32_t count;
  napi_status st = strong ? napi_reference_ref(c->env, c->callback, &count)
                          : napi_reference_unref(c->env, c->callback, &count);
  /* On failure the count is unchanged, and so is what we record: the next call tries again. */
  if (st == napi_ok) c->callback_strong = strong;
}

static void call_js(chan_end *c, int event) {
  if (c->shut || c->callback == NULL) return;
  napi_env env = c->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value fn = NULL, global, argv[1], result;
  if (napi_get_reference_value(env, c->callback, &fn) == napi_ok && fn != NULL &&
      napi_get_global(env, &global) == napi_ok && napi_create_int32(env, event, &argv[0]) == napi_ok) {
    /* napi_make_callback drains nextTick and microtasks afterwards, so the woken promise chains run now. */
    napi_status st = napi_make_callback(env, NULL, global, fn, 1, argv, &result);
    if (st == napi_pending_exception) {
      napi_value exc;
      if (napi_get_and_clear_last_exception(env, &exc) == napi_ok) napi_fatal_exception(env, exc);
    }
  }
  napi_close_handle_scope(env, scope);
}

static void on_async(uv_async_t *handle) {
  chan_end *c = handle->data;
  uv_mutex_lock(&c->lock);
  bool still_armed = c->armed;
  uv_mutex_unlock(&c->lock);
  if (!still_armed) {
    uv_unref((uv_handle_t *)&c->async);
    set_callback_strong(c, false);
  }
  call_js(c, still_armed ? EVENT_BELL_SUPERSEDED : EVENT_BELL);
}

static void on_pidfd(uv_poll_t *handle, int status, int events) {
  chan_end *c = handle->data;
  /* One event is all there is to know: an exited process stays exited. */
  uv_poll_stop(&c->poll);
  call_js(c, EVENT_PEER_EXIT);
}

static void finish_if_closed(chan_end *c);

static void on_async_closed(uv_handle_t *h) {
  chan_end *c = h->data;
  c->async_closed = true;
  finish_if_closed(c);
}

static void on_poll_closed(uv_handle_t *h) {
  chan_end *c = h->data;
  if (c->pidfd >= 0) close(c->pidfd);
  c->pidfd = -1;
  c->poll_closed = true;
  finish_if_closed(c);
}

static void stop_thread(chan_end *c) {
  if (!c->thread_started) return;
  uv_mutex_lock(&c->lock);
  c->stopping = true;
  uv_cond_signal(&c->cond);
  uv_mutex_unlock(&c->lock);
  /* The thread may be in FUTEX_WAIT or about to enter it: wake until it has left. */
  while (!atomic_load(&c->thread_done)) {
    futex_wake_shared(c->bell);
    if (atomic_load(&c->thread_done)) break;
    struct timespec pause = {0, 100000};
    nanosleep(&pause, NULL);
  }
  uv_thread_join(&c->thread);
  c->thread_started = false;
}

/* Ends this end for good: marks it closed for the peer, stops the thread, closes the handles. Idempotent;
 * safe from a finalizer and from the env cleanup hook. */
static void end_shutdown(chan_end *c, bool mark_closed) {
  if (c->shut) return;
  c->shut = true;
  if (mark_closed && c->header != NULL) {
    atomic_store(c->closed, 1);
    atomic_fetch_add(c->peer_bell, 1);
    futex_wake_shared(c->peer_bell);
  }
  stop_thread(c);
  if (c->callback != NULL) {
    napi_delete_reference(c->env, c->callback);
    c->callback = NULL;
  }
  if (c->header != NULL) {
    munmap(c->header, HEADER_BYTES);
    c->header = NULL;
  }
  if (c->async_open) uv_close((uv_handle_t *)&c->async, on_async_closed);
  if (c->poll_open) {
    uv_poll_stop(&c->poll);
    uv_close((uv_handle_t *)&c->poll, on_poll_closed);
  }
}

/* Once shut down and both handles are closed, the env cleanup hook is removed: an env being torn down
 * waits for that, so the loop is never closed with our handles on it. */
static void finish_if_closed(chan_end *c) {
  if (!c->shut) return;
  if (c->async_open && !c->async_closed) return;
  if (c->poll_open && !c->poll_closed) return;
  if (c->hook_registered) {
    c->hook_registered = false;
    napi_remove_async_cleanup_hook(c->hook);
  }
  maybe_free(c);
}

static void on_env_cleanup(napi_async_cleanup_hook_handle handle, void *arg) {
  chan_end *c = arg;
  end_shutdown(c, true);
  finish_if_closed(c);
}

static void finalize_end(napi_env env, void *data, void *hint) {
  chan_end *c = data;
  /* Dropped without close(): src/channel.ts normally closes it first (and warns); this is the last
   * resort, which still tells the peer. */
  end_shutdown(c, true);
  c->finalized = true;
  finish_if_closed(c);
}

static chan_end *unwrap_end(napi_env env, napi_value v) {
  return unwrap_tagged(env, v, &CHANNEL_TAG, "a memfd native channel end");
}

static bool header_word(napi_env env, napi_value v, uint32_t *offset) {
  if (!get_uint32_arg(env, v, offset, "offset")) return false;
  if (*offset >= HEADER_BYTES || (*offset & 3) != 0) {
    throw_range_error(env, "ERR_OUT_OF_RANGE", "header word offset must be 4-byte aligned and inside the header page");
    return false;
  }
  return true;
}

/* channelEndOpen(fd, bellOffset, peerBellOffset, closedOffset, callback) -> external.
 * The fd must belong to an open MemFile checked in the same synchronous JS call. */
static napi_value js_end_open(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  if (!get_args(env, info, 5, argv, NULL)) return NULL;
  int32_t fd;
  uint32_t bell_off, peer_bell_off, closed_off;
  if (!get_int32_arg(env, argv[0], &fd, "fd") || !header_word(env, argv[1], &bell_off) ||
      !header_word(env, argv[2], &peer_bell_off) || !header_word(env, argv[3], &closed_off))
    return NULL;
  napi_valuetype type;
  NAPI_OK_OR_THROW(env, napi_typeof(env, argv[4], &type));
  if (type != napi_function) return throw_type_error(env, "ERR_INVALID_ARG_TYPE", "Expected a callback function");
  uv_loop_t *loop = NULL;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == NULL)
    return throw_napi_failure(env, napi_generic_failure, "napi_get_uv_event_loop");

  chan_end *c = calloc(1, sizeof *c);
  if (c == NULL) return throw_errno(env, ENOMEM, "malloc");
  c->env = env;
  c->pidfd = -1;
  if (uv_mutex_init(&c->lock) != 0) {
    free(c);
    return throw_errno(env, ENOMEM, "uv_mutex_init");
  }
  if (uv_cond_init(&c->cond) != 0) {
    uv_mutex_destroy(&c->lock);
    free(c);
    return throw_errno(env, ENOMEM, "uv_cond_init");
  }
  void *page = mmap(NULL, HEADER_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (page == MAP_FAILED) {
    int err = errno;
    uv_cond_destroy(&c->cond);
    uv_mutex_destroy(&c->lock);
    free(c);
    return throw_errno(env, err, "mmap");
  }
  c->header = page;
  c->bell = (_Atomic uint32_t *)(c->header + bell_off);
  c->peer_bell = (_Atomic uint32_t *)(c->header + peer_bell_off);
  c->closed = (_Atomic uint32_t *)(c->header + closed_off);

  napi_value external;
  napi_status st = napi_create_reference(env, argv[4], 0, &c->callback);
  if (st == napi_ok) st = napi_create_external(env, c, finalize_end, NULL, &external);
  if (st != napi_ok) {
    if (c->callback) napi_delete_reference(env, c->callback);
    munmap(c->header, HEADER_BYTES);
    uv_cond_destroy(&c->cond);
    uv_mutex_destroy(&c->lock);
    free(c);
    return throw_napi_failure(env, st, "napi_create_external");
  }
  /* From here the finalizer owns c: failures below leave it to clean up. */
  NAPI_OK_OR_THROW(env, napi_type_tag_object(env, external, &CHANNEL_TAG));
  int err = uv_async_init(loop, &c->async, on_async);
  if (err != 0) return throw_errno(env, -err, "uv_async_init");
  c->async.data = c;
  c->async_open = true;
  uv_unref((uv_handle_t *)&c->async);
  NAPI_OK_OR_THROW(env, napi_add_async_cleanup_hook(env, on_env_cleanup, c, &c->hook));
  c->hook_registered = true;
  return external;
}

static bool start_thread(napi_env env, chan_end *c) {
  if (c->thread_started) return true;
  atomic_store(&c->thread_done, 0);
  c->stopping = false;
  /* No signals on this thread (Node's handlers expect them on the main thread); the mask is inherited. */
  sigset_t all, old;
  sigfillset(&all);
  uv_thread_options_t options = {.flags = UV_THREAD_HAS_STACK_SIZE, .stack_size = 64 * 1024};
  sigprocmask(SIG_SETMASK, &all, &old);
  int err = uv_thread_create_ex(&c->thread, &options, waiter_thread, c);
  sigprocmask(SIG_SETMASK, &old, NULL);
  if (err != 0) {
    throw_errno(env, -err, "uv_thread_create");
    return false;
  }
  c->thread_started = true;
  return true;
}

/* channelEndArm(end, expected): report EVENT_BELL once the bell differs from `expected`. */
static napi_value js_end_arm(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv, NULL)) return NULL;
  chan_end *c = unwrap_end(env, argv[0]);
  if (c == NULL) return NULL;
  uint32_t expected;
  if (!get_uint32_arg(env, argv[1], &expected, "expected")) return NULL;
  if (c->shut) return throw_type_error(env, "ERR_MEMFD_CHANNEL_CLOSED", "The channel is closed");
  if (!start_thread(env, c)) return NULL;
  uv_mutex_lock(&c->lock);
  c->expected = expected;
  c->armed = true;
  c->arm_seq++;
  uv_cond_signal(&c->cond);
  uv_mutex_unlock(&c->lock);
  /* The thread may still sleep with an older expected value: make it look again. */
  futex_wake_shared(c->bell);
  uv_ref((uv_handle_t *)&c->async);
  set_callback_strong(c, true);
  return make_undefined(env);
}

/* channelEndDisarm(end): no wait pending any more. */
static napi_value js_end_disarm(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv, NULL)) return NULL;
  chan_end *c = unwrap_end(env, argv[0]);
  if (c == NULL) return NULL;
  if (c->shut) return make_undefined(env);
  uv_mutex_lock(&c->lock);
  c->armed = false;
  uv_mutex_unlock(&c->lock);
  uv_unref((uv_handle_t *)&c->async);
  set_callback_strong(c, false);
  return make_undefined(env);
}

/* channelEndRing(end): add one to the peer's bell and wake it (the peer's sleep flag said it sleeps). */
static napi_value js_end_ring(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv, NULL)) return NULL;
  chan_end *c = unwrap_end(env, argv[0]);
  if (c == NULL) return NULL;
  if (c->shut) return make_undefined(env);
  atomic_fetch_add(c->peer_bell, 1);
  if (futex_wake_shared(c->peer_bell) < 0) return throw_errno(env, errno, "futex");
  return make_undefined(env);
}

/* channelEndWatchPid(end, pid) -> 0, or the errno of pidfd_open (ESRCH: no such process any more). */
static napi_value js_end_watch_pid(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv, NULL)) return NULL;
  chan_end *c = unwrap_end(env, argv[0]);
  if (c == NULL) return NULL;
  int32_t pid;
  if (!get_int32_arg(env, argv[1], &pid, "pid")) return NULL;
  if (pid <= 0) return throw_range_error(env, "ERR_OUT_OF_RANGE", "pid must be > 0");
  if (c->shut) return throw_type_error(env, "ERR_MEMFD_CHANNEL_CLOSED", "The channel is closed");
  if (c->poll_open) return make_int32(env, EEXIST);
  int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
  if (pidfd < 0) return make_int32(env, errno);
  /* pidfd_open gives close-on-exec fds already (it has no flag for it: always O_CLOEXEC). */
  uv_loop_t *loop = NULL;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == NULL) {
    close(pidfd);
    return throw_napi_failure(env, napi_generic_failure, "napi_get_uv_event_loop");
  }
  int err = uv_poll_init(loop, &c->poll, pidfd);
  if (err != 0) {
    close(pidfd);
    return throw_errno(env, -err, "uv_poll_init");
  }
  c->poll.data = c;
  c->pidfd = pidfd;
  c->poll_open = true;
  /* Watching the peer never keeps the process alive by itself; a pending wait does. */
  uv_unref((uv_handle_t *)&c->poll);
  err = uv_poll_start(&c->poll, UV_READABLE, on_pidfd);
  if (err != 0) {
    uv_close((uv_handle_t *)&c->poll, on_poll_closed);
    return throw_errno(env, -err, "uv_poll_start");
  }
  return make_int32(env, 0);
}

/* channelEndClose(end): marks this end closed in shared memory, rings the peer, stops everything. */
static napi_value js_end_close(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv, NULL)) return NULL;
  chan_end *c = unwrap_end(env, argv[0]);
  if (c == NULL) return NULL;
  end_shutdown(c, true);
  finish_if_closed(c);
  return make_undefined(env);
}

typedef struct window_hint {
  map_record *rec;
} window_hint;

static void finalize_window(napi_env env, void *data, void *hint) {
  window_hint *w = hint;
  mapping_window_unref(w->rec);
  free(w);
}

/* channelWindow(mapping, offset, length) -> ArrayBuffer over those bytes of the mapping (zero copy). */
static napi_value js_window(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!get_args(env, info, 3, argv, NULL)) return NULL;
  map_record *r = mapping_unwrap(env, argv[0]);
  if (r == NULL) return NULL;
  int64_t offset, length;
  if (!get_size_arg(env, argv[1], &offset, "offset") || !get_size_arg(env, argv[2], &length, "length")) return NULL;
  if (!r->mapped) {
    napi_throw_error(env, "ERR_MEMFD_UNMAPPED", "The mapping has been unmapped");
    return NULL;
  }
  if (length == 0 || (uint64_t)offset > r->length || (uint64_t)length > r->length - (uint64_t)offset)
    return throw_range_error(env, "ERR_OUT_OF_RANGE", "window outside the mapping");
  window_hint *w = malloc(sizeof *w);
  if (w == NULL) return throw_errno(env, ENOMEM, "malloc");
  w->rec = r;
  napi_value buffer;
  napi_status st = napi_create_external_arraybuffer(env, r->data + offset, (size_t)length, finalize_window, w, &buffer);
  if (st != napi_ok) {
    free(w);
    return throw_napi_failure(env, st, "napi_create_external_arraybuffer");
  }
  mapping_window_ref(r);
  return buffer;
}

/* channelDetach(arrayBuffer): every view of it has length 0 from now on. */
static napi_value js_detach(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv, NULL)) return NULL;
  bool is = false;
  NAPI_OK_OR_THROW(env, napi_is_arraybuffer(env, argv[0], &is));
  if (!is) return throw_type_error(env, "ERR_INVALID_ARG_TYPE", "Expected an ArrayBuffer");
  NAPI_OK_OR_THROW(env, napi_detach_arraybuffer(env, argv[0]));
  return make_undefined(env);
}

/* channelYield(): sched_yield(2). A spinning wait calls it so that a peer waiting for this CPU (two ends on
 * one core, or more runnable threads than cores) runs now instead of after our time slice. */
static napi_value js_yield(napi_env env, napi_callback_info info) {
  sched_yield();
  return make_undefined(env);
}

/* channelMembarrierRegister() -> 0, or -errno: membarrier(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED), tried
 * once per process (registration is per address space: every thread and Worker shares it). ENOSYS before
 * Linux 4.16, EPERM under a seccomp filter, EINVAL where the command is unknown. Once registered, a barrier
 * that any process issues with MEMBARRIER_CMD_GLOBAL_EXPEDITED runs a full fence on every CPU that is running
 * one of our threads: that is what lets this process's channel ends publish with a plain store
 * (docs/channel.md, "Publishing without a fence"). */
static napi_value js_membarrier_register(napi_env env, napi_callback_info info) {
  (void)info;
  static _Atomic int result = 1; /* 1: not tried yet */
  int r = atomic_load(&result);
  if (r == 1) {
    r = syscall(SYS_membarrier, MEMBARRIER_REGISTER_GLOBAL_EXPEDITED, 0, 0) == 0 ? 0 : -errno;
    atomic_store(&result, r);
  }
  return make_int32(env, r);
}

/* channelMembarrier() -> 0, or -errno: membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED). The heavy half of the
 * sleep handshake with a peer that publishes without a fence: after it returns, either the peer's last
 * publish is visible here, or the peer's next look at our sleep flag sees it raised. It interrupts each CPU
 * running a registered process and waits for them: 1.2 µs here when the peer sleeps, 50 µs when it runs
 * (a VM); src/channel.ts calls it only 1 ms into a sleep. */
static napi_value js_membarrier(napi_env env, napi_callback_info info) {
  (void)info;
  int r = syscall(SYS_membarrier, MEMBARRIER_GLOBAL_EXPEDITED, 0, 0) == 0 ? 0 : -errno;
  return make_int32(env, r);
}

bool init_channel(napi_env env, napi_value exports) {
  static const export_entry entries[] = {
      {"channelEndOpen", js_end_open},
      {"channelEndArm", js_end_arm},
      {"channelEndDisarm", js_end_disarm},
      {"channelEndRing", js_end_ring},
      {"channelEndWatchPid", js_end_watch_pid},
      {"channelEndClose", js_end_close},
      {"channelWindow", js_window},
      {"channelDetach", js_detach},
      {"channelYield", js_yield},
      {"channelMembarrierRegister", js_membarrier_register},
      {"channelMembarrier", js_membarrier},
  };
  return export_functions(env, exports, entries, sizeof entries / sizeof entries[0]);
}
