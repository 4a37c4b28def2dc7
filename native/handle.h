/* An owned file descriptor behind an opaque, type-tagged JS external.
 *
 * Lifetime rules (why this exists instead of passing fd numbers around):
 *  - JS never acts on a raw number it got from us: after close() the handle answers "closed" even if the
 *    kernel has since handed the same number to another file.
 *  - close() while thread-pool work still uses the fd only marks the handle closed; the real close(2)
 *    happens when the last in-flight operation completes, so that work can never hit a reused number.
 *  - A handle dropped without close() is closed by its finalizer exactly once. */
#ifndef MEMFD_HANDLE_H
#define MEMFD_HANDLE_H

#include "common.h"

typedef struct fd_handle {
  int fd;              /* the descriptor we own; -1 once close(2) has been called */
  bool closed;         /* closed as far as JS is concerned */
  uint32_t in_flight;  /* thread-pool operations using the fd (main thread only) */
  uint32_t pins;       /* queued socket sends that will still send this fd (main thread only) */
  bool finalized;      /* the JS external is gone; free when in_flight drops to 0 */
  bool claimable;      /* a received fd: an adopter in the same env may take the fd over (immutable) */
  napi_env env;        /* the env (thread) that owns the handle (immutable) */
} fd_handle;

/* Wraps an fd we now own. On failure returns NULL with an exception pending and leaves fd open. */
napi_value fd_handle_wrap(napi_env env, int fd, fd_handle **out);
/* Same for an fd that arrived in a message: fd_handle_adopt and fd_owned_claim in the same env may take
 * the fd over from this handle (which is then emptied), instead of refusing it as already owned. */
napi_value fd_handle_wrap_received(napi_env env, int fd);
/* Same for an fd that came from outside (inherited, given by the user): refuses, with
 * ERR_MEMFD_FD_ALREADY_OWNED, an fd that another handle of this process already owns. */
napi_value fd_handle_adopt(napi_env env, int fd, fd_handle **out);
/* The process-wide table of fd numbers owned by some object (fd handles, sockets). */
bool fd_owned_is(int fd);
bool fd_owned_mark(int fd);            /* false only when the table cannot grow (ENOMEM) */
void fd_owned_forget(int fd);          /* the caller takes the raw fd over */
void fd_owned_close(int fd);           /* close(2) and forget, atomically with respect to the table */
/* If fd is owned by a claimable (received) handle of `env` that no operation uses, moves the table entry
 * to an anonymous owner (still owned: no other thread can adopt it meanwhile) and returns that handle; the
 * caller then either succeeds and calls fd_handle_empty(h) and fd_owned_mark(fd), or gives the entry back
 * with fd_owned_unclaim(h, fd). Returns NULL (nothing changed) when fd is not claimable by env. */
fd_handle *fd_owned_claim(napi_env env, int fd);
void fd_owned_unclaim(fd_handle *h, int fd);
/* The handle no longer owns any fd (its close and finalizer become no-ops). */
void fd_handle_empty(fd_handle *h);
/* Unwraps a handle, throwing ERR_INVALID_ARG_TYPE for anything else. */
fd_handle *fd_handle_unwrap(napi_env env, napi_value v);
/* The fd of an open handle, or -1 with EBADF thrown when it is closed. */
int fd_handle_open_fd(napi_env env, fd_handle *h, const char *syscall);
/* Pins the fd for thread-pool work; balance with fd_handle_release on the main thread. */
int fd_handle_acquire(napi_env env, fd_handle *h, const char *syscall);
void fd_handle_release(fd_handle *h);
/* Keeps the fd open past close() for a queued send that was requested before the close. Unlike
 * in_flight, pins do not outlive the handle: once it is finalized (GC, or env teardown of a terminated
 * Worker) nobody can send it any more, so the finalizer closes the fd whatever the pin count. */
bool fd_handle_pin(napi_env env, fd_handle *h, const char *syscall);
void fd_handle_unpin(fd_handle *h);

#endif
