/* Owned file descriptors: the process-wide owned-fd table, and the fd handle behind MemFile and Message.
 *
 * Lifetime rules (why this exists instead of passing fd numbers around):
 *  - An fd number is a claim, not a fact: JS code can close any number we hand out (fs.closeSync) and the
 *    kernel gives it to the next open. So the library never operates on a number it handed out. A handle
 *    does its syscalls on a private number (`fd`) that JS never sees; `file.fd` is a second number made
 *    on first use (a dup) that exists only to be given away. Closing it by hand cannot touch our file.
 *  - Every number we own is in the owned-fd table, which names its owner (an fd_claim). Marking, checking,
 *    identity comparison and close(2) happen under one lock, so a number the kernel reuses is only ever
 *    marked by its new owner after the old owner let go of it.
 *  - Before closing a number that was handed out, the owner checks that the table still names it and that
 *    the number still refers to the same open file (st_dev, st_ino recorded when it was handed out). On a
 *    mismatch nothing is closed: the number belongs to someone else now.
 *  - After JS close() the handle answers "closed" whatever the kernel did with the numbers.
 *  - close() while thread-pool work uses the fd only marks the handle closed; close(2) of the private fd
 *    happens when the last in-flight operation completes.
 *  - A handle dropped without close() is closed exactly once (and says so: notice.c). A MemFile's handle is
 *    a number (a slot and its generation, handle.c), whose owner's FinalizationRegistry calls
 *    handleRelease; the library's internal copies are externals closed by their finalizer. Env teardown
 *    closes whatever is left either way. */
#ifndef MEMFD_HANDLE_H
#define MEMFD_HANDLE_H

#include "common.h"

/* What owns a claim: decides the wording of warnings and whether a mismatch is the caller's mistake. */
typedef enum fd_kind {
  FD_KIND_FILE = 0,     /* a MemFile */
  FD_KIND_RECEIVED = 1, /* an fd that arrived in a Message: msg.fds are the caller's to close */
  FD_KIND_SOCKET = 2,   /* a UnixSocket or UnixServer */
  FD_KIND_INTERNAL = 3, /* the library's own copies (queued sends): never reported */
  FD_KIND_COUNT = 4
} fd_kind;

/* One number owned by the library, as the owned-fd table records it. The table points at claims; a claim
 * is unlinked from the table (under the lock) before its memory is freed. */
typedef struct fd_claim {
  int fd;                   /* -1 when the claim holds no number */
  bool exposed;             /* the number was handed to JS: compare identity before closing */
  uint8_t kind;             /* fd_kind (immutable) */
  napi_env env;             /* env (thread) of the owner (immutable) */
  struct fd_handle *handle; /* owning handle, or NULL for sockets (immutable) */
  int twin;                 /* an fd of ours on the same open file description (the private fd a shown
                               number was duplicated from), or -1: compared with kcmp(2) before closing */
  dev_t dev;                /* identity of the open file when exposed and there is no usable twin */
  ino_t ino;
} fd_claim;

typedef enum claim_close_result {
  CLAIM_EMPTY = 0,    /* held nothing */
  CLAIM_CLOSED = 1,   /* closed */
  CLAIM_NOT_OURS = 2, /* the number no longer referred to our file: left alone */
} claim_close_result;

void fd_claim_init(fd_claim *c, fd_kind kind, napi_env env, struct fd_handle *handle);
/* Records a number fresh from the kernel (socket, memfd_create, dup, recvmsg...): it is ours whatever the
 * table said, since a stale entry means its previous owner lost the number behind its back. With
 * `exposed`, what identifies the open file is recorded too: `twin` (a private fd of ours on the same open
 * file description, which must stay open until this claim is closed) when kcmp(2) works here, else
 * st_dev/st_ino. Returns 0 or an errno (nothing recorded). */
int fd_claim_fresh(fd_claim *c, int fd, bool exposed, int twin);
/* Takes over a number someone handed to us (an inherited fd, msg.fds[i]) as an exposed claim: refuses
 * (ERR_MEMFD_FD_ALREADY_OWNED thrown, false) a number another object of this process owns, unless it is a
 * received fd of `env` that nothing uses, whose message handle is then emptied. Identity is recorded. */
bool fd_claim_adopt(napi_env env, fd_claim *c, int fd);
/* Verifies and closes (see the rules above), and unlinks the claim. */
claim_close_result fd_claim_close(fd_claim *c);
/* Unlinks the claim without closing: the caller took the number over. */
void fd_claim_forget(fd_claim *c);
/* True when some object of this process owns `fd` (a stale exposed entry does not count). */
bool fd_owned_is(int fd);
/* True when `fd` is a received fd of `env` that fd_claim_adopt would hand over. */
bool fd_received_here(napi_env env, int fd);

typedef struct fd_handle {
  int fd;             /* the private number syscalls use (for a received handle: the number in msg.fds) */
  fd_claim own;       /* the table's record of `fd` */
  fd_claim shown;     /* the number given to JS when it is not `fd` (made on first use), or -1 */
  bool closed;        /* closed as far as JS is concerned */
  uint32_t in_flight; /* thread-pool operations using the fd (main thread only) */
  uint32_t pins;      /* queued socket sends that will still send this fd (main thread only) */
  bool finalized;     /* the JS owner is gone (external finalized, or handleRelease); free when in_flight is 0 */
  bool forgotten;     /* closed because its owner was dropped without close(): say so when the fd goes */
  int32_t slot;       /* number handles (MemFile): index in the slot table, else -1 (see handle.c) */
  uint8_t kind;       /* fd_kind (immutable) */
  int8_t cloexec;     /* the close-on-exec flag the file was opened with (1/0), -1 unknown: given to `shown` */
  napi_env env;       /* the env (thread) that owns the handle (immutable) */
} fd_handle;

/* Wraps a fresh fd we now own, opened with close-on-exec `cloexec` (1/0, -1 unknown). On failure returns
 * NULL with an exception pending and leaves fd open. */
napi_value fd_handle_wrap(napi_env env, int fd, fd_kind kind, int cloexec, fd_handle **out);
/* Unwraps a handle, throwing ERR_INVALID_ARG_TYPE for anything else. */
fd_handle *fd_handle_unwrap(napi_env env, napi_value v);
/* The private fd of an open handle, or -1 with EBADF thrown when it is closed. */
int fd_handle_open_fd(napi_env env, fd_handle *h, const char *syscall);
/* The common prologue of a handle method: exactly `argc` arguments, argv[0] a handle that is open.
 * Returns the private fd, or -1 with an exception pending. */
int fd_handle_args(napi_env env, napi_callback_info info, size_t argc, napi_value *argv, fd_handle **h,
                   const char *syscall);
/* Pins the fd for thread-pool work; balance with fd_handle_release on the main thread. */
int fd_handle_acquire(napi_env env, fd_handle *h, const char *syscall);
void fd_handle_release(fd_handle *h);
/* Keeps the fd open past close() for a queued send that was requested before the close. Unlike
 * in_flight, pins do not outlive the handle: once it is finalized (GC, or env teardown of a terminated
 * Worker) nobody can send it any more, so the finalizer closes the fd whatever the pin count. */
bool fd_handle_pin(napi_env env, fd_handle *h, const char *syscall);
void fd_handle_unpin(fd_handle *h);

/* The received fds of one receive batch (socketRecvBatch): ONE tagged external with one finalizer owns the
 * records of every fd that arrived in the batch, instead of one finalizable external per fd. Each record is
 * an fd_handle of kind FD_KIND_RECEIVED embedded in the batch, so every rule above holds per fd: its claim
 * is in the owned-fd table (marked under the lock), its identity is recorded when it is handed out (the
 * numbers are in msg.fds from the start), adoption (fd_claim_adopt) finds and empties the record under the
 * lock exactly as for a standalone handle, and closing verifies identity first. A number is handed out
 * when JS first reads msg.fds (batchExpose records the identity then, one fstat per fd); a message whose
 * fds are never read (msg.close() right away, or take(), which gives the number away) costs no fstat at
 * all: its numbers were never shown, so only the table decides, as for any private fd. The records stay valid
 * (the table may point at them) until the finalizer has unlinked every claim. Messages refer to
 * (batch, first index, count); the batch is collected when the last Message of it is, and its finalizer
 * closes the fds nobody took, adopted or closed (MEMFD_CLOSED_BY_GC), once. Env teardown runs it too. */
typedef struct fd_batch fd_batch;
/* Takes ownership of fds[0..n) (fresh from recvmsg). On failure returns NULL with an exception pending and
 * every fd closed (by the batch's finalizer or here). */
napi_value fd_batch_wrap(napi_env env, const int *fds, size_t n);
#endif
