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
  uint32_t in_flight;  /* async operations holding the fd (main thread only) */
  bool finalized;      /* the JS external is gone; free when in_flight drops to 0 */
} fd_handle;

/* Wraps an fd we now own. On failure returns NULL with an exception pending and leaves fd open. */
napi_value fd_handle_wrap(napi_env env, int fd, fd_handle **out);
/* Same for an fd that came from outside (inherited, given by the user): refuses, with
 * ERR_MEMFD_FD_ALREADY_OWNED, an fd that another handle of this process already owns. */
napi_value fd_handle_adopt(napi_env env, int fd, fd_handle **out);
/* The process-wide table of fd numbers owned by some object (fd handles, sockets). */
bool fd_owned_is(int fd);
bool fd_owned_mark(int fd);            /* false only when the table cannot grow (ENOMEM) */
void fd_owned_forget(int fd);          /* the caller takes the raw fd over */
void fd_owned_close(int fd);           /* close(2) and forget, atomically with respect to the table */
/* Unwraps a handle, throwing ERR_INVALID_ARG_TYPE for anything else. */
fd_handle *fd_handle_unwrap(napi_env env, napi_value v);
/* The fd of an open handle, or -1 with EBADF thrown when it is closed. */
int fd_handle_open_fd(napi_env env, fd_handle *h, const char *syscall);
/* Pins the fd for thread-pool work; balance with fd_handle_release on the main thread. */
int fd_handle_acquire(napi_env env, fd_handle *h, const char *syscall);
void fd_handle_release(fd_handle *h);

#endif
