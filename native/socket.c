/* Unix domain sockets with SCM_RIGHTS, driven by a libuv poll handle on the env's own loop.
 *
 * Split of work: this file performs non-blocking syscalls and owns lifetimes; queues, ordering and
 * promise bookkeeping live in src/socket.ts. The poll callback only tells JS "readable/writable", and
 * JS then calls socketRecvBatch/socketSend until they report EAGAIN.
 *
 * Lifetime rules (see shared/knowledge/node-native.md, "Event loop and fd passing"):
 *  - A unix_sock has two owners: the JS external (released by its finalizer) and the uv_poll_t (released
 *    by uv_close's callback). Either may go first; the memory is freed when both are gone.
 *  - close(2) happens only in the uv_close callback, never while the poll handle still watches the fd, so
 *    epoll never sees a reused fd number.
 *  - The polled fd is private: socket.fd is another number for the same socket (handle.h). A program that
 *    closes socket.fd by hand (fs.closeSync) cannot make libuv watch, or us close, a reused number; the
 *    shown number is closed with the socket only if it still refers to this socket.
 *  - The JS object that receives events is referenced strongly only while polling is requested; an idle
 *    socket dropped by JS is collected and its finalizer closes it.
 *  - An async env cleanup hook closes every live socket when the env goes away (Worker.terminate(), exit)
 *    and keeps the env waiting until all uv_close callbacks have run (uv_loop_close would abort otherwise). */
#include "constants.h"
#include "handle.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

/* Stream reads are sized by FIONREAD, within these bounds. */
#define STREAM_READ_MIN 4096
#define STREAM_READ_MAX (1024 * 1024)

/* Per-message flag bits in the meta array of socketRecvBatch (MEMFD_RECV_*), the per-message fd limit
 * (MEMFD_SCM_MAX_FD) and the buffer selector of socketSetBufferSize come from constants.h, mirrored in
 * src/constants.ts. */

static const napi_type_tag SOCKET_TAG = {0x6d656d6664736f63ULL, 0x4b3e8a1d77c2f019ULL};

typedef struct socket_registry socket_registry;

typedef struct unix_sock {
  uv_poll_t poll;
  napi_env env;
  socket_registry *reg; /* NULL once unlinked (after the close callback) */
  int fd;               /* the private number polled and used for syscalls; never shown to JS */
  fd_claim own;         /* the owned-fd table's record of fd */
  fd_claim shown;       /* the number JS sees (socket.fd): a duplicate made on first use, or the adopted fd */
  int type;
  int events;           /* uv events currently requested */
  bool closing;         /* uv_close has been called: no syscall may use fd any more */
  bool poll_closed;     /* uv_close's callback ran: the uv owner is gone */
  bool finalized;       /* the JS external is gone: the JS owner is gone */
  bool strong;          /* target reference count is 1 */
  napi_ref target;      /* JS object whose dispatcher receives poll events */
  struct unix_sock *prev, *next;
} unix_sock;

struct socket_registry {
  napi_env env;
  unix_sock *head;
  napi_ref dispatcher;                 /* function(events) called with `this` = the target */
  napi_async_cleanup_hook_handle hook;
  bool cleaning;                       /* the env is going away */
};

/* ---------- registry and lifetime ---------- */

static socket_registry *get_registry(napi_env env) {
  addon_data *d = addon_get_data(env);
  return d ? d->sockets : NULL;
}

static void registry_add(socket_registry *reg, unix_sock *s) {
  s->reg = reg;
  s->prev = NULL;
  s->next = reg->head;
  if (reg->head) reg->head->prev = s;
  reg->head = s;
}

static void finish_cleanup(socket_registry *reg) {
  /* The env waits for this call; after it the registry is never used again. */
  napi_async_cleanup_hook_handle hook = reg->hook;
  addon_data *d = addon_get_data(reg->env);
  if (d != NULL && d->sockets == reg) d->sockets = NULL;
  free(reg);
  napi_remove_async_cleanup_hook(hook);
}

static void registry_remove(unix_sock *s) {
  socket_registry *reg = s->reg;
  if (reg == NULL) return;
  if (s->prev) s->prev->next = s->next;
  else reg->head = s->next;
  if (s->next) s->next->prev = s->prev;
  s->prev = s->next = NULL;
  s->reg = NULL;
  if (reg->cleaning && reg->head == NULL) finish_cleanup(reg);
}

static void on_poll_closed(uv_handle_t *handle) {
  unix_sock *s = handle->data;
  /* Only now, with the poll handle gone from epoll, may the number be released to the kernel. */
  int shown = s->shown.fd;
  if (fd_claim_close(&s->shown) == CLAIM_NOT_OURS) notice_post(s->env, NOTICE_NOT_OURS, FD_KIND_SOCKET, shown);
  fd_claim_close(&s->own);
  s->fd = -1;
  s->poll_closed = true;
  registry_remove(s);
  if (s->finalized) free(s);
}

static void drop_target(unix_sock *s) {
  if (s->target != NULL) {
    napi_delete_reference(s->env, s->target);
    s->target = NULL;
  }
  s->strong = false;
}

/* Starts closing: stop watching, let the uv_close callback close the fd. Idempotent. */
static void sock_close(unix_sock *s) {
  if (s->closing) return;
  s->closing = true;
  drop_target(s);
  uv_poll_stop(&s->poll);
  uv_close((uv_handle_t *)&s->poll, on_poll_closed);
}

static void finalize_sock(napi_env env, void *data, void *hint) {
  unix_sock *s = data;
  /* The socket was dropped without close(): close it now (the target reference is weak here, or this
   * finalizer could not run), and say so. */
  if (!s->closing) notice_post(env, NOTICE_GC_CLOSED, FD_KIND_SOCKET, s->shown.fd >= 0 ? s->shown.fd : s->fd);
  sock_close(s);
  s->finalized = true;
  if (s->poll_closed) free(s);
}

static void on_env_cleanup(napi_async_cleanup_hook_handle handle, void *arg) {
  socket_registry *reg = arg;
  reg->cleaning = true;
  if (reg->dispatcher) {
    napi_delete_reference(reg->env, reg->dispatcher);
    reg->dispatcher = NULL;
  }
  for (unix_sock *s = reg->head; s != NULL; s = s->next) sock_close(s);
  if (reg->head == NULL) finish_cleanup(reg);
}

/* ---------- poll callback ---------- */

static void on_poll(uv_poll_t *handle, int status, int events) {
  unix_sock *s = handle->data;
  if (s->closing || s->reg == NULL || s->target == NULL || s->reg->dispatcher == NULL) return;
  napi_env env = s->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value target = NULL, fn = NULL, argv[1], result;
  napi_get_reference_value(env, s->target, &target);
  napi_get_reference_value(env, s->reg->dispatcher, &fn);
  if (target != NULL && fn != NULL) {
    /* A poll error (status < 0) is passed as is: JS then tries the syscalls, which report the real errno. */
    napi_create_int32(env, status < 0 ? status : events, &argv[0]);
    /* napi_make_callback (not napi_call_function): it drains nextTick and microtasks afterwards, so
     * promise continuations run before the loop blocks again. The receiver must be an object. */
    napi_status st = napi_make_callback(env, NULL, target, fn, 1, argv, &result);
    if (st == napi_pending_exception) {
      napi_value exc;
      if (napi_get_and_clear_last_exception(env, &exc) == napi_ok) napi_fatal_exception(env, exc);
    }
  }
  napi_close_handle_scope(env, scope);
}

/* ---------- construction ---------- */

/* Wraps a fresh connected/listening fd (ours alone: from socket(), accept4() or our own dup). On failure
 * returns NULL with an exception pending and the fd still open (the caller closes it). */
static napi_value sock_wrap(napi_env env, int fd, int type, unix_sock **out) {
  socket_registry *reg = get_registry(env);
  if (reg == NULL || reg->cleaning) {
    throw_type_error(env, "ERR_MEMFD_INTERNAL", "socket registry unavailable");
    return NULL;
  }
  uv_loop_t *loop = NULL;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == NULL) {
    throw_napi_failure(env, napi_generic_failure, "napi_get_uv_event_loop");
    return NULL;
  }
  /* One poll handle per fd: libuv only notices a duplicate watcher while the first one is started, so
   * check our own registry too (a closing socket still holds its number until its close callback). */
  for (unix_sock *o = reg->head; o != NULL; o = o->next) {
    if (o->fd == fd) {
      throw_errno(env, EEXIST, "uv_poll_init");
      return NULL;
    }
  }
  unix_sock *s = calloc(1, sizeof *s);
  if (s == NULL) {
    throw_errno(env, ENOMEM, "malloc");
    return NULL;
  }
  s->env = env;
  s->fd = fd;
  s->type = type;
  fd_claim_init(&s->own, FD_KIND_SOCKET, env, NULL);
  fd_claim_init(&s->shown, FD_KIND_SOCKET, env, NULL);
  int err = fd_claim_fresh(&s->own, fd, false, -1);
  if (err != 0) {
    free(s);
    throw_errno(env, err, "malloc");
    return NULL;
  }
  /* uv_poll_init also refuses (EEXIST) an fd another handle of this loop already watches: one poll
   * handle per fd, including Node's own handles. */
  int rc = uv_poll_init(loop, &s->poll, fd);
  if (rc != 0) {
    fd_claim_forget(&s->own);
    free(s);
    throw_errno(env, -rc, "uv_poll_init");
    return NULL;
  }
  s->poll.data = s;
  napi_value external;
  if (napi_create_external(env, s, finalize_sock, NULL, &external) != napi_ok) {
    /* The handle is initialised: it must be closed through uv_close, without closing the fd. */
    fd_claim_forget(&s->own);
    s->fd = -1;
    s->finalized = true;
    s->closing = true;
    uv_close((uv_handle_t *)&s->poll, on_poll_closed);
    throw_napi_failure(env, napi_generic_failure, "napi_create_external");
    return NULL;
  }
  registry_add(reg, s);
  if (napi_type_tag_object(env, external, &SOCKET_TAG) != napi_ok) {
    fd_claim_forget(&s->own); /* the finalizer will close the poll handle but must leave the fd alone */
    s->fd = -1;
    sock_close(s);
    throw_napi_failure(env, napi_generic_failure, "napi_type_tag_object");
    return NULL;
  }
  if (out) *out = s;
  return external;
}

static unix_sock *sock_unwrap(napi_env env, napi_value v) {
  return unwrap_tagged(env, v, &SOCKET_TAG, "a memfd native socket");
}

/* The fd of a socket that is not closing, or -1 with EBADF thrown. */
static int sock_fd(napi_env env, unix_sock *s, const char *syscall) {
  if (s->closing || s->fd < 0) {
    throw_errno(env, EBADF, syscall);
    return -1;
  }
  return s->fd;
}

static bool get_type_arg(napi_env env, napi_value v, int *type) {
  int32_t t;
  if (!get_int32_arg(env, v, &t, "type")) return false;
  if (t != SOCK_STREAM && t != SOCK_DGRAM && t != SOCK_SEQPACKET) {
    throw_range_error(env, "ERR_OUT_OF_RANGE", "The \"type\" argument must be SOCK_STREAM, SOCK_DGRAM or SOCK_SEQPACKET");
    return false;
  }
  *type = t;
  return true;
}

/* Address bytes from JS: a path (no NUL) or an abstract name (leading NUL). TS validated the length. */
static bool get_addr_arg(napi_env env, napi_value v, struct sockaddr_un *addr, socklen_t *len) {
  uint8_t *bytes;
  size_t n;
  if (!get_bytes_arg(env, v, &bytes, &n, "address")) return false;
  if (n == 0 || n > sizeof addr->sun_path || (bytes[0] != 0 && n >= sizeof addr->sun_path)) {
    throw_range_error(env, "ERR_OUT_OF_RANGE", "The \"address\" argument does not fit in sockaddr_un");
    return false;
  }
  memset(addr, 0, sizeof *addr);
  addr->sun_family = AF_UNIX;
  memcpy(addr->sun_path, bytes, n);
  /* Abstract names are exactly n bytes (no terminator); paths carry their NUL. */
  *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (bytes[0] == 0 ? 0 : 1));
  return true;
}

/* socketPair(type) -> [a, b] */
static napi_value js_socket_pair(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv, NULL)) return NULL;
  int type;
  if (!get_type_arg(env, argv[0], &type)) return NULL;
  int sv[2];
  if (socketpair(AF_UNIX, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) != 0) return throw_errno(env, errno, "socketpair");
  unix_sock *first = NULL;
  napi_value a = sock_wrap(env, sv[0], type, &first);
  if (a == NULL) {
    close(sv[0]);
    close(sv[1]);
    return NULL;
  }
  napi_value b = sock_wrap(env, sv[1], type, NULL);
  if (b == NULL) {
    close(sv[1]);
    /* Not through sock_unwrap: with an exception pending it cannot read the external's tag. */
    sock_close(first); /* closes sv[0] in its close callback */
    return NULL;
  }
  napi_value arr;
  NAPI_OK_OR_THROW(env, napi_create_array_with_length(env, 2, &arr));
  napi_set_element(env, arr, 0, a);
  napi_set_element(env, arr, 1, b);
  return arr;
}

/* socketConnect(type, address) -> [socket, inProgress]. EAGAIN (listener backlog full) is thrown:
 * a Unix connect that returns EAGAIN is not in progress, and JS retries it. */
static napi_value js_socket_connect(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv, NULL)) return NULL;
  int type;
  struct sockaddr_un addr;
  socklen_t len;
  if (!get_type_arg(env, argv[0], &type) || !get_addr_arg(env, argv[1], &addr, &len)) return NULL;
  int fd = socket(AF_UNIX, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return throw_errno(env, errno, "socket");
  bool in_progress = false;
  if (connect(fd, (struct sockaddr *)&addr, len) != 0) {
    /* EINTR on a non-blocking connect means the connection continues asynchronously. */
    if (errno == EINPROGRESS || errno == EINTR) {
      in_progress = true;
    } else {
      int err = errno;
      close(fd);
      return throw_errno(env, err, "connect");
    }
  }
  napi_value s = sock_wrap(env, fd, type, NULL);
  if (s == NULL) {
    close(fd);
    return NULL;
  }
  napi_value arr;
  NAPI_OK_OR_THROW(env, napi_create_array_with_length(env, 2, &arr));
  napi_set_element(env, arr, 0, s);
  napi_set_element(env, arr, 1, make_bool(env, in_progress));
  return arr;
}

/* socketError(socket) -> pending SO_ERROR (0 when none): the outcome of an in-progress connect. */
static napi_value js_socket_error(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv, NULL)) return NULL;
  unix_sock *s = sock_unwrap(env, argv[0]);
  if (s == NULL) return NULL;
  int fd = sock_fd(env, s, "getsockopt");
  if (fd < 0) return NULL;
  int err = 0;
  socklen_t len = sizeof err;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) return throw_errno(env, errno, "getsockopt");
  return make_int32(env, err);
}

/* socketListen(type, address, backlog) -> socket */
static napi_value js_socket_listen(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!get_args(env, info, 3, argv, NULL)) return NULL;
  int type;
  int32_t backlog;
  struct sockaddr_un addr;
  socklen_t len;
  if (!get_type_arg(env, argv[0], &type) || !get_addr_arg(env, argv[1], &addr, &len) ||
      !get_int32_arg(env, argv[2], &backlog, "backlog")) {
    return NULL;
  }
  int fd = socket(AF_UNIX, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return throw_errno(env, errno, "socket");
  if (bind(fd, (struct sockaddr *)&addr, len) != 0) {
    int err = errno;
    close(fd);
    return throw_errno(env, err, "bind");
  }
  /* A datagram socket cannot listen; it is bound and receives directly. */
  if (type != SOCK_DGRAM && listen(fd, backlog) != 0) {
    int err = errno;
    close(fd);
    if (addr.sun_path[0] != 0) unlink(addr.sun_path); /* we created the path a moment ago */
    return throw_errno(env, err, "listen");
  }
  napi_value s = sock_wrap(env, fd, type, NULL);
  if (s == NULL) {
    close(fd);
    if (addr.sun_path[0] != 0) unlink(addr.sun_path);
  }
  return s;
}

/* socketAccept(listener) -> socket, or null when no connection is waiting */
static napi_value js_socket_accept(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv, NULL)) return NULL;
  unix_sock *s = sock_unwrap(env, argv[0]);
  if (s == NULL) return NULL;
  int lfd = sock_fd(env, s, "accept4");
  if (lfd < 0) return NULL;
  int fd;
  for (;;) {
    fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd >= 0) break;
    /* ECONNABORTED: the client gave up before we accepted; look at the next one. */
    if (errno == EINTR || errno == ECONNABORTED) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      napi_value n;
      napi_get_null(env, &n);
      return n;
    }
    return throw_errno(env, errno, "accept4");
  }
  napi_value c = sock_wrap(env, fd, s->type, NULL);
  if (c == NULL) close(fd);
  return c;
}

/* socketInspect(fd) -> [type, listening]; throws ENOTSOCK for a non-socket, EAFNOSUPPORT for a socket
 * that is not AF_UNIX. Takes nothing: validation happens before adoption so a refusal leaves the fd alone. */
static napi_value js_socket_inspect(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv, NULL)) return NULL;
  int32_t fd;
  if (!get_int32_arg(env, argv[0], &fd, "fd")) return NULL;
  if (fd < 0) return throw_range_error(env, "ERR_OUT_OF_RANGE", "The \"fd\" argument must be >= 0");
  int domain = 0, type = 0, listening = 0;
  socklen_t len = sizeof domain;
  if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) != 0) return throw_errno(env, errno, "getsockopt");
  if (domain != AF_UNIX) return throw_errno(env, EAFNOSUPPORT, "getsockopt");
  len = sizeof type;
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0) return throw_errno(env, errno, "getsockopt");
  len = sizeof listening;
  if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0) listening = 0;
  napi_value arr;
  NAPI_OK_OR_THROW(env, napi_create_array_with_length(env, 2, &arr));
  napi_set_element(env, arr, 0, make_int32(env, type));
  napi_set_element(env, arr, 1, make_bool(env, listening != 0));
  return arr;
}

/* socketAdopt(fd, type) -> socket that owns fd (checked by socketInspect). The socket polls a private
 * duplicate; fd stays the number JS sees, closed with the socket. On failure fd is left open and
 * unchanged. A received fd still owned by its message in this env is handed over (the message lets go
 * only on success); any other owned fd is refused. */
static napi_value js_socket_adopt(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv, NULL)) return NULL;
  int32_t fd;
  int type;
  if (!get_int32_arg(env, argv[0], &fd, "fd") || !get_type_arg(env, argv[1], &type)) return NULL;
  if (fd < 0) return throw_range_error(env, "ERR_OUT_OF_RANGE", "The \"fd\" argument must be >= 0");
  /* Refuse before making anything for an fd that is not the caller's to give. */
  if (fd_owned_is(fd) && !fd_received_here(env, fd)) {
    napi_throw_error(env, "ERR_MEMFD_FD_ALREADY_OWNED",
                     "This fd is already owned by another memfd object in this process; to give a socket to a "
                     "Worker, send it msg.take() of a received socket, or a socket made for it");
    return NULL;
  }
  int own = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (own < 0) return throw_errno(env, errno, "fcntl");
  unix_sock *s = NULL;
  napi_value sock = sock_wrap(env, own, type, &s); /* uv_poll_init makes it non-blocking */
  if (sock == NULL) {
    close(own);
    return NULL;
  }
  if (!fd_claim_adopt(env, &s->shown, fd)) {
    sock_close(s); /* closes own in its close callback */
    return NULL;
  }
  /* Inherited fds usually lack close-on-exec; we pass fds explicitly, never by accident. */
  int flags = fcntl(fd, F_GETFD);
  if (flags >= 0 && !(flags & FD_CLOEXEC)) fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
  return sock;
}

/* ---------- JS plumbing ---------- */

/* socketSetDispatcher(fn): fn.call(target, events) is called from the poll callback. */
static napi_value js_socket_set_dispatcher(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv, NULL)) return NULL;
  napi_valuetype t = napi_undefined;
  NAPI_OK_OR_THROW(env, napi_typeof(env, argv[0], &t));
  if (t != napi_function) return throw_type_error(env, "ERR_INVALID_ARG_TYPE", "Expected a function");
  socket_registry *reg = get_registry(env);
  if (reg == NULL) return throw_type_error(env, "ERR_MEMFD_INTERNAL", "socket registry unavailable");
  if (reg->dispatcher) napi_delete_reference(env, reg->dispatcher);
  reg->dispatcher = NULL;
  NAPI_OK_OR_THROW(env, napi_create_reference(env, argv[0], 1, &reg->dispatcher));
  return make_undefined(env);
}

/* socketAttach(socket, target): target receives the events (held weakly while idle). */
static napi_value js_socket_attach(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv, NULL)) return NULL;
  unix_sock *s = sock_unwrap(env, argv[0]);
  if (s == NULL) return NULL;
  napi_valuetype t = napi_undefined;
  NAPI_OK_OR_THROW(env, napi_typeof(env, argv[1], &t));
  if (t != napi_object) return throw_type_error(env, "ERR_INVALID_ARG_TYPE", "Expected an object");
  if (s->closing) return throw_errno(env, EBADF, "attach");
  drop_target(s);
  NAPI_OK_OR_THROW(env, napi_create_reference(env, argv[1], 0, &s->target));
  return make_undefined(env);
}

/* socketPoll(socket, events): watch UV_READABLE/UV_WRITABLE; 0 stops watching. While watching, the
 * target is referenced strongly (an active socket stays alive, as a net.Socket does) and the loop is
 * kept alive; idle sockets keep neither. */
static napi_value js_socket_poll(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv, NULL)) return NULL;
  unix_sock *s = sock_unwrap(env, argv[0]);
  if (s == NULL) return NULL;
  int32_t events;
  if (!get_int32_arg(env, argv[1], &events, "events")) return NULL;
  events &= UV_READABLE | UV_WRITABLE;
  if (s->closing) return make_undefined(env);
  if (events == s->events) return make_undefined(env);
  if (events == 0) {
    uv_poll_stop(&s->poll);
  } else {
    int rc = uv_poll_start(&s->poll, events, on_poll);
    if (rc != 0) return throw_errno(env, -rc, "uv_poll_start");
  }
  s->events = events;
  bool want_strong = events != 0;
  if (s->target != NULL && want_strong != s->strong) {
    uint32_t count;
    if (want_strong) napi_reference_ref(env, s->target, &count);
    else napi_reference_unref(env, s->target, &count);
    s->strong = want_strong;
  }
  return make_undefined(env);
}

/* socketClose(socket) -> true when this call started closing it */
static napi_value js_socket_close(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv, NULL)) return NULL;
  unix_sock *s = sock_unwrap(env, argv[0]);
  if (s == NULL) return NULL;
  bool was_open = !s->closing;
  sock_close(s);
  return make_bool(env, was_open);
}

/* socketFd(socket) -> the number JS may see and give away (a close-on-exec duplicate of the polled fd,
 * made on first use), or -1 once closing. */
static napi_value js_socket_fd(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv, NULL)) return NULL;
  unix_sock *s = sock_unwrap(env, argv[0]);
  if (s == NULL) return NULL;
  if (s->closing || s->fd < 0) return make_int32(env, -1);
  if (s->shown.fd >= 0) return make_int32(env, s->shown.fd);
  int shown = fcntl(s->fd, F_DUPFD_CLOEXEC, 0);
  if (shown < 0) return throw_errno(env, errno, "fcntl");
  int err = fd_claim_fresh(&s->shown, shown, true, s->fd);
  if (err != 0) {
    close(shown);
    return throw_errno(env, err, err == ENOMEM ? "malloc" : "fstat");
  }
  return make_int32(env, shown);
}

/* socketShutdown(socket, how) */
static napi_value js_socket_shutdown(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv, NULL)) return NULL;
  unix_sock *s = sock_unwrap(env, argv[0]);
  if (s == NULL) return NULL;
  int32_t how;
  if (!get_int32_arg(env, argv[1], &how, "how")) return NULL;
  int fd = sock_fd(env, s, "shutdown");
  if (fd < 0) return NULL;
  if (shutdown(fd, how) != 0 && errno != ENOTCONN) return throw_errno(env, errno, "shutdown");
  return make_undefined(env);
}

/* socketPeerCred(socket) -> [pid, uid, gid] */
static napi_value js_socket_peer_cred(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv, NULL)) return NULL;
  unix_sock *s = sock_unwrap(env, argv[0]);
  if (s == NULL) return NULL;
  int fd = sock_fd(env, s, "getsockopt");
  if (fd < 0) return NULL;
  struct ucred cred;
  socklen_t len = sizeof cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return throw_errno(env, errno, "getsockopt");
  napi_value arr;
  NAPI_OK_OR_THROW(env, napi_create_array_with_length(env, 3, &arr));
  napi_set_element(env, arr, 0, make_int32(env, cred.pid));
  napi_set_element(env, arr, 1, make_uint32(env, cred.uid));
  napi_set_element(env, arr, 2, make_uint32(env, cred.gid));
  return arr;
}

/* socketSetBufferSize(socket, which (0 send, 1 receive), bytes) / socketGetBufferSize(socket, which) */
static napi_value js_socket_set_buffer_size(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!get_args(env, info, 3, argv, NULL)) return NULL;
  unix_sock *s = sock_unwrap(env, argv[0]);
  if (s == NULL) return NULL;
  int32_t which, bytes;
  if (!get_int32_arg(env, argv[1], &which, "which") || !get_int32_arg(env, argv[2], &bytes, "bytes")) return NULL;
  int fd = sock_fd(env, s, "setsockopt");
  if (fd < 0) return NULL;
  int opt = which == MEMFD_SOCK_BUFFER_SEND ? SO_SNDBUF : SO_RCVBUF;
  if (setsockopt(fd, SOL_SOCKET, opt, &bytes, sizeof bytes) != 0) return throw_errno(env, errno, "setsockopt");
  int actual = 0;
  socklen_t len = sizeof actual;
  if (getsockopt(fd, SOL_SOCKET, opt, &actual, &len) != 0) return throw_errno(env, errno, "getsockopt");
  return make_int32(env, actual);
}

/* ---------- data path ---------- */

/* socketSend(socket, data, offset, length, fds | null) -> bytes accepted, or -1 for EAGAIN.
 * fds is an array of fd numbers or fd handles (handles: the queued copies made by dupFd). */
static napi_value js_socket_send(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  if (!get_args(env, info, 5, argv, NULL)) return NULL;
  unix_sock *s = sock_unwrap(env, argv[0]);
  if (s == NULL) return NULL;
  uint8_t *data;
  size_t total;
  int64_t offset, length;
  if (!get_bytes_arg(env, argv[1], &data, &total, "data") || !get_size_arg(env, argv[2], &offset, "offset") ||
      !get_size_arg(env, argv[3], &length, "length")) {
    return NULL;
  }
  if ((uint64_t)offset > total || (uint64_t)length > total - (size_t)offset) {
    return throw_range_error(env, "ERR_OUT_OF_RANGE", "offset/length outside the data");
  }
  int fds[MEMFD_SCM_MAX_FD];
  uint32_t nfds = 0;
  /* Every N-API status is checked here: while a Worker is being terminated, calls that touch JS fail, and
   * an unchecked napi_get_element leaves `e` uninitialised (napi_typeof on it crashed the process). */
  napi_valuetype t = napi_undefined;
  NAPI_OK_OR_THROW(env, napi_typeof(env, argv[4], &t));
  if (t != napi_null && t != napi_undefined) {
    bool is_array = false;
    NAPI_OK_OR_THROW(env, napi_is_array(env, argv[4], &is_array));
    if (!is_array) return throw_type_error(env, "ERR_INVALID_ARG_TYPE", "fds must be an array");
    NAPI_OK_OR_THROW(env, napi_get_array_length(env, argv[4], &nfds));
    if (nfds > MEMFD_SCM_MAX_FD) {
      return throw_range_error(env, "ERR_OUT_OF_RANGE", "At most 253 fds (SCM_MAX_FD) fit in one message");
    }
    for (uint32_t i = 0; i < nfds; i++) {
      napi_value e = NULL;
      NAPI_OK_OR_THROW(env, napi_get_element(env, argv[4], i, &e));
      napi_valuetype et = napi_undefined;
      NAPI_OK_OR_THROW(env, napi_typeof(env, e, &et));
      double number = 0;
      if (et == napi_number) NAPI_OK_OR_THROW(env, napi_get_value_double(env, e, &number));
      if (et == napi_number && number >= 0) {
        int32_t fd;
        if (!get_int32_arg(env, e, &fd, "fd")) return NULL;
        fds[i] = fd;
      } else { /* a MemFile's handle (a negative number) or the library's own copy (an external) */
        fd_handle *h = fd_handle_unwrap(env, e);
        if (h == NULL) return NULL;
        /* A pinned handle (handlePin) keeps its fd open even after its owner closed it: the send was
         * requested before the close, so the file still goes out. */
        int fd = h->pins > 0 && h->fd >= 0 ? h->fd : fd_handle_open_fd(env, h, "sendmsg");
        if (fd < 0) return NULL;
        fds[i] = fd;
      }
    }
  }
  int sfd = sock_fd(env, s, "sendmsg");
  if (sfd < 0) return NULL;

  struct iovec iov = {.iov_base = data + offset, .iov_len = (size_t)length};
  union {
    char buf[CMSG_SPACE(sizeof(int) * MEMFD_SCM_MAX_FD)];
    struct cmsghdr align;
  } control;
  struct msghdr msg = {0};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (nfds > 0) {
    memset(&control, 0, sizeof control);
    msg.msg_control = control.buf;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
    struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
    memcpy(CMSG_DATA(cmsg), fds, sizeof(int) * nfds);
  }
  ssize_t n;
  do {
    /* MSG_NOSIGNAL: a dead peer is an EPIPE rejection, never a SIGPIPE that kills the process. */
    n = sendmsg(sfd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return make_int32(env, -1);
    return throw_errno(env, errno, "sendmsg");
  }
  return make_double(env, (double)n);
}

/* ---------- batched send ----------
 * socketSendBatch(socket, bytes, meta, handles | null, first, count) -> k >= 0 messages accepted, starting
 * at message `first`; -1 when the first of them met EAGAIN (nothing sent); throws the errno of message
 * `first` when it failed (nothing sent).
 *  - bytes: the staging buffer (src/socket.ts) holding every staged message, copied there by send().
 *  - meta: Int32Array, message i at meta[4i..4i+3] = [offset in bytes, length, index of its first fd in
 *    handles, number of fds].
 *  - handles: the fds of the staged messages, each a MemFile handle pinned by JS (handlePin) when the
 *    message was staged: the private fd, kept open by the pin even if the MemFile was closed since, never
 *    a number JS could have closed. Raw fd numbers are never staged (src/socket.ts sends them at once).
 * Lifetime rule: this call unpins the handles of every message the kernel accepted (for a stream, also of
 * a message whose first bytes it took: its fds went with them), because from then on the kernel holds its
 * own reference to each file. The handles of messages not sent stay pinned: JS moves them to its wait
 * queue or unpins them when it rejects the message.
 * Seqpacket and datagram sockets: one sendmmsg(2) for up to SEND_BATCH_MAX messages; a short count means
 * the next message met EAGAIN or an error (the kernel reports neither once a message went out), which the
 * next call, starting there, reports. Stream sockets: sendmmsg would be wrong (after a partial write of
 * one msghdr the kernel goes on with the next one if room appeared meanwhile, splicing bytes into the
 * middle of the cut message), so the staged bytes go out with one sendmsg(2) per run: a run is a message
 * and the fd-less messages after it (contiguous in `bytes`), so fds stay attached to the first byte of
 * their own message. A partial write stops the call; the cut message's meta is advanced past the bytes
 * sent and its fd count set to 0 (they went with its first byte). */

#define SEND_BATCH_MAX 64
#define SEND_META 4

typedef struct batch_msg {
  size_t offset, length;
  uint32_t fd_first, nfds;
} batch_msg;

/* Unpins the handles of the messages [from, to). Called with the JS handles array after a send. */
static void unpin_messages(napi_env env, napi_value handles, const batch_msg *m, size_t from, size_t to) {
  for (size_t i = from; i < to; i++) {
    for (uint32_t k = 0; k < m[i].nfds; k++) {
      napi_value e = NULL;
      /* The handles were unwrapped a moment ago in this same call: these cannot fail short of the env
       * dying, in which case the handle finalizers close the fds whatever the pin count (handle.h). */
      if (napi_get_element(env, handles, m[i].fd_first + k, &e) != napi_ok || e == NULL) continue;
      fd_handle *h = fd_handle_unwrap(env, e);
      if (h == NULL) {
        napi_value ignored;
        napi_get_and_clear_last_exception(env, &ignored);
        continue;
      }
      fd_handle_unpin(h);
    }
  }
}

static napi_value js_socket_send_batch(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  if (!get_args(env, info, 6, argv, NULL)) return NULL;
  unix_sock *s = sock_unwrap(env, argv[0]);
  if (s == NULL) return NULL;
  uint8_t *data;
  size_t total;
  if (!get_bytes_arg(env, argv[1], &data, &total, "bytes")) return NULL;
  bool is_ta = false;
  napi_typedarray_type ta_type;
  size_t meta_len = 0, meta_off;
  void *meta_raw = NULL;
  napi_value meta_ab;
  if (napi_is_typedarray(env, argv[2], &is_ta) != napi_ok || !is_ta ||
      napi_get_typedarray_info(env, argv[2], &ta_type, &meta_len, &meta_raw, &meta_ab, &meta_off) != napi_ok ||
      ta_type != napi_int32_array) {
    return throw_type_error(env, "ERR_INVALID_ARG_TYPE", "meta must be an Int32Array");
  }
  int32_t *meta = meta_raw;
  int32_t first, count;
  if (!get_int32_arg(env, argv[4], &first, "first") || !get_int32_arg(env, argv[5], &count, "count")) return NULL;
  if (first < 0 || count < 1 || (size_t)first + (size_t)count > meta_len / SEND_META) {
    return throw_range_error(env, "ERR_OUT_OF_RANGE", "first/count outside the staged messages");
  }
  if (count > SEND_BATCH_MAX) count = SEND_BATCH_MAX;
  napi_valuetype ht = napi_undefined;
  NAPI_OK_OR_THROW(env, napi_typeof(env, argv[3], &ht));
  bool have_handles = ht != napi_null && ht != napi_undefined;
  uint32_t nhandles = 0;
  if (have_handles) {
    bool is_array = false;
    NAPI_OK_OR_THROW(env, napi_is_array(env, argv[3], &is_array));
    if (!is_array) return throw_type_error(env, "ERR_INVALID_ARG_TYPE", "handles must be an array");
    NAPI_OK_OR_THROW(env, napi_get_array_length(env, argv[3], &nhandles));
  }

  batch_msg m[SEND_BATCH_MAX];
  for (int32_t i = 0; i < count; i++) {
    const int32_t *e = meta + (size_t)(first + i) * SEND_META;
    if (e[0] < 0 || e[1] < 0 || (size_t)e[0] > total || (size_t)e[1] > total - (size_t)e[0] || e[2] < 0 || e[3] < 0 ||
        e[3] > MEMFD_SCM_MAX_FD || (uint64_t)e[2] + (uint64_t)e[3] > nhandles) {
      return throw_range_error(env, "ERR_OUT_OF_RANGE", "a staged message lies outside the staging buffer");
    }
    m[i].offset = (size_t)e[0];
    m[i].length = (size_t)e[1];
    m[i].fd_first = (uint32_t)e[2];
    m[i].nfds = (uint32_t)e[3];
  }
  int sfd = sock_fd(env, s, s->type == SOCK_STREAM ? "sendmsg" : "sendmmsg");
  if (sfd < 0) return NULL;

  /* Control messages, one block per message with fds: on the stack for the common case (a few fds). */
  union {
    char buf[SEND_BATCH_MAX * CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } control_local;
  size_t control_size = 0;
  for (int32_t i = 0; i < count; i++) {
    if (m[i].nfds > 0) control_size += CMSG_SPACE(sizeof(int) * m[i].nfds);
  }
  char *control = control_local.buf;
  if (control_size > sizeof control_local.buf) {
    control = malloc(control_size);
    if (control == NULL) return throw_errno(env, ENOMEM, "malloc");
  }
  if (control_size > 0) memset(control, 0, control_size);

  struct mmsghdr msgs[SEND_BATCH_MAX];
  struct iovec iovs[SEND_BATCH_MAX];
  memset(msgs, 0, sizeof(struct mmsghdr) * (size_t)count);
  size_t cpos = 0;
  for (int32_t i = 0; i < count; i++) {
    iovs[i].iov_base = data + m[i].offset;
    iovs[i].iov_len = m[i].length;
    struct msghdr *h = &msgs[i].msg_hdr;
    h->msg_iov = &iovs[i];
    h->msg_iovlen = 1;
    if (m[i].nfds == 0) continue;
    h->msg_control = control + cpos;
    h->msg_controllen = CMSG_SPACE(sizeof(int) * m[i].nfds);
    cpos += h->msg_controllen;
    struct cmsghdr *c = CMSG_FIRSTHDR(h);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * m[i].nfds);
    unsigned char *p = CMSG_DATA(c);
    for (uint32_t k = 0; k < m[i].nfds; k++) {
      napi_value e = NULL;
      napi_status st = napi_get_element(env, argv[3], m[i].fd_first + k, &e);
      if (st != napi_ok) {
        if (control != control_local.buf) free(control);
        return throw_napi_failure(env, st, "napi_get_element");
      }
      fd_handle *fh = fd_handle_unwrap(env, e);
      if (fh == NULL || fh->pins == 0 || fh->fd < 0) {
        if (control != control_local.buf) free(control);
        if (fh == NULL) return NULL;
        return throw_type_error(env, "ERR_MEMFD_INTERNAL", "a staged fd handle is not pinned");
      }
      memcpy(p + k * sizeof(int), &fh->fd, sizeof(int)); /* CMSG_DATA may be unaligned for int */
    }
  }

  int32_t sent = 0;
  int err = 0;
  if (s->type != SOCK_STREAM) {
    int r;
    do {
      /* MSG_NOSIGNAL: a dead peer is an EPIPE rejection, never a SIGPIPE. */
      r = sendmmsg(sfd, msgs, (unsigned)count, MSG_NOSIGNAL | MSG_DONTWAIT);
    } while (r < 0 && errno == EINTR);
    if (r < 0) err = errno;
    else sent = r;
  } else {
    int32_t i = 0; /* the first message not wholly sent */
    size_t cut = 0; /* bytes of message i that went out */
    while (i < count) {
      /* A run: message i (with or without fds) and the fd-less messages after it, contiguous in bytes. */
      int32_t j = i + 1;
      while (j < count && m[j].nfds == 0 && m[j].offset == m[j - 1].offset + m[j - 1].length) j++;
      struct iovec run = {.iov_base = data + m[i].offset, .iov_len = m[j - 1].offset + m[j - 1].length - m[i].offset};
      struct msghdr h = msgs[i].msg_hdr;
      h.msg_iov = &run;
      ssize_t n;
      do {
        n = sendmsg(sfd, &h, MSG_NOSIGNAL | MSG_DONTWAIT);
      } while (n < 0 && errno == EINTR);
      if (n < 0) {
        err = errno;
        break;
      }
      size_t left = (size_t)n;
      while (i < j && left >= m[i].length) {
        left -= m[i].length;
        i++;
      }
      if (i < j) {
        cut = left; /* a partial write: stop here (the socket buffer is full) */
        break;
      }
    }
    sent = i;
    if (cut > 0) {
      /* Message i is cut: the rest goes later, without its fds (they went with its first byte). */
      int32_t *e = meta + (size_t)(first + i) * SEND_META;
      e[0] += (int32_t)cut;
      e[1] -= (int32_t)cut;
      e[3] = 0;
      if (have_handles) unpin_messages(env, argv[3], m, (size_t)i, (size_t)i + 1);
      if (control != control_local.buf) free(control);
      if (have_handles) unpin_messages(env, argv[3], m, 0, (size_t)i);
      return make_int32(env, sent); /* progress, even when 0 messages were completed */
    }
  }
  if (control != control_local.buf) free(control);
  if (sent > 0) {
    if (have_handles) unpin_messages(env, argv[3], m, 0, (size_t)sent);
    return make_int32(env, sent);
  }
  if (err == EAGAIN || err == EWOULDBLOCK) return make_int32(env, -1);
  if (err == 0) return make_int32(env, 0);
  return throw_errno(env, err, s->type == SOCK_STREAM ? "sendmsg" : "sendmmsg");
}

static void close_fds(const int *fds, size_t n) {
  for (size_t i = 0; i < n; i++) close(fds[i]);
}

/* ---------- batch receive ----------
 * socketRecvBatch(socket, maxFds, maxMessages) -> null (EAGAIN, nothing read) | 0 (end of stream, nothing
 * read) | [data, meta, batch | null].
 *  - data: ONE Buffer that every message of the batch was received into, at increasing offsets.
 *  - meta: Int32Array [count, then per message: offset, length, flags (RECV_*), fds that arrived, fds
 *    delivered; then the delivered fd numbers of all messages in order].
 *  - batch: the fd_batch external owning every delivered fd (handle.h), or null when none arrived.
 * Seqpacket sizing without MSG_PEEK: FIONREAD (unix_inq_len) is the total length of every queued message,
 * so a buffer of that size holds each of them: they are received one after another with capacity
 * T - offset, none can be truncated, and a message that arrives meanwhile is not read (the loop stops once
 * the counted bytes are in; FIFO). Zero-length messages count 0: with T == 0 the next message is sized by
 * a peek, as before. Datagram sockets: FIONREAD is the next datagram's size; one datagram per call.
 * Streams: one read sized by FIONREAD within bounds. The end of stream is reported by the next call.
 * Bounds of one batch: maxMessages, the bytes FIONREAD counted, and maxFds received fds. */

#define BATCH_MAX_MESSAGES 256
#define META_PER_MESSAGE 5

typedef struct recv_result {
  ssize_t n;
  int flags;
  size_t arrived;
  size_t ngot;
  int got[MEMFD_SCM_MAX_FD];
} recv_result;

/* One recvmsg into buf[0..cap). Returns 0, or an errno (EAGAIN included). */
static int recv_one(int fd, uint8_t *buf, size_t cap, int32_t max_fds, recv_result *r) {
  union {
    char buf[CMSG_SPACE(sizeof(int) * MEMFD_SCM_MAX_FD)];
    struct cmsghdr align;
  } control;
  uint8_t dummy;
  struct iovec iov = {.iov_base = cap > 0 ? buf : &dummy, .iov_len = cap};
  struct msghdr msg = {0};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  /* The control buffer decides how many fds can arrive: the kernel drops the rest (MSG_CTRUNC). */
  msg.msg_control = max_fds > 0 ? control.buf : NULL;
  msg.msg_controllen = max_fds > 0 ? CMSG_SPACE(sizeof(int) * (size_t)max_fds) : 0;
  ssize_t n;
  do {
    /* MSG_CMSG_CLOEXEC: received fds never leak into programs we spawn. */
    n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return errno == EWOULDBLOCK ? EAGAIN : errno;
  r->n = n;
  r->ngot = 0;
  /* Collect every int of every SCM_RIGHTS block (a peer may send several blocks). */
  if (msg.msg_controllen > 0) {
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      const unsigned char *p = CMSG_DATA(c);
      for (size_t i = 0; i < count; i++) {
        int rfd;
        memcpy(&rfd, p + i * sizeof(int), sizeof rfd); /* CMSG_DATA may be unaligned for int */
        if (r->ngot < MEMFD_SCM_MAX_FD) r->got[r->ngot++] = rfd;
        else close(rfd); /* cannot happen (SCM_MAX_FD), but never leak */
      }
    }
  }
  r->flags = 0;
  /* How many arrived before any truncation: lets JS tell a full fd table from an exceeded budget. */
  r->arrived = r->ngot;
  /* CMSG_SPACE rounds up to 8 bytes, so an odd budget can admit one fd more than asked for: enforce the
   * budget exactly, as if the kernel had truncated. */
  if ((msg.msg_flags & MSG_CTRUNC) || r->ngot > (size_t)max_fds) {
    /* Some fds were dropped by the kernel: the message is incomplete, so deliver none of them. */
    close_fds(r->got, r->ngot);
    r->flags |= MEMFD_RECV_FDS_TRUNCATED;
    r->ngot = 0;
  }
  if (msg.msg_flags & MSG_TRUNC) r->flags |= MEMFD_RECV_DATA_TRUNCATED;
  return 0;
}

/* For seqpacket: true when a 0-byte read without fds means the peer is gone. The kernel answers 0 at EOF
 * only when nothing is queued and the peer has shut down (RDHUP). */
static bool seqpacket_at_eof(int fd) {
  struct pollfd p = {.fd = fd, .events = POLLIN | POLLRDHUP};
  int queued = 0;
  return poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP)) && ioctl(fd, FIONREAD, &queued) == 0 &&
         queued == 0;
}

static napi_value js_socket_recv_batch(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!get_args(env, info, 3, argv, NULL)) return NULL;
  unix_sock *s = sock_unwrap(env, argv[0]);
  if (s == NULL) return NULL;
  int32_t max_fds, max_messages;
  if (!get_int32_arg(env, argv[1], &max_fds, "maxFds") || !get_int32_arg(env, argv[2], &max_messages, "maxMessages")) {
    return NULL;
  }
  if (max_fds < 0 || max_fds > MEMFD_SCM_MAX_FD) {
    return throw_range_error(env, "ERR_OUT_OF_RANGE", "maxFds must be between 0 and 253");
  }
  if (max_messages < 1) max_messages = 1;
  if (max_messages > BATCH_MAX_MESSAGES) max_messages = BATCH_MAX_MESSAGES;
  int fd = sock_fd(env, s, "recvmsg");
  if (fd < 0) return NULL;

  napi_value null_value;
  napi_get_null(env, &null_value);

  /* Sizing. */
  size_t total;
  bool counted = false; /* seqpacket with T > 0: loop over the counted bytes */
  int queued = 0;
  if (ioctl(fd, FIONREAD, &queued) != 0 || queued < 0) queued = 0;
  if (s->type == SOCK_STREAM) {
    total = queued < STREAM_READ_MIN ? STREAM_READ_MIN : queued > STREAM_READ_MAX ? STREAM_READ_MAX : (size_t)queued;
    max_messages = 1;
  } else if (queued > 0) {
    total = (size_t)queued;
    counted = s->type == SOCK_SEQPACKET;
    if (!counted) max_messages = 1;
  } else {
    /* Nothing counted: nothing queued, or a zero-length message (fds only, or EOF), or a datagram that
     * arrived just now. Datagrams report their real length to MSG_PEEK|MSG_TRUNC (no control buffer, so no
     * fd is installed by the peek). */
    ssize_t peek;
    do {
      peek = recv(fd, NULL, 0, MSG_PEEK | MSG_TRUNC | MSG_DONTWAIT);
    } while (peek < 0 && errno == EINTR);
    if (peek < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return null_value;
      return throw_errno(env, errno, "recvmsg");
    }
    total = (size_t)peek;
    max_messages = 1;
  }

  /* The JS buffer first: messages are received straight into it (no copy). */
  void *raw = NULL;
  napi_value data;
  NAPI_OK_OR_THROW(env, napi_create_buffer(env, total, &raw, &data));
  uint8_t *buf = raw;

  int32_t meta_msgs[BATCH_MAX_MESSAGES * META_PER_MESSAGE];
  int fds_local[64];
  int *fds = fds_local;
  size_t nfds = 0, fds_cap = sizeof fds_local / sizeof fds_local[0];
  int32_t count = 0;
  size_t offset = 0;
  int err = 0;
  bool eof = false;
  recv_result r;
  while (count < max_messages) {
    if (count > 0 && (!counted || offset >= total)) break;
    /* Read-ahead of fds is bounded too: a batch stops once it holds as many fds as one message may carry
     * (the budget), so unread messages never keep more than about twice that open in this process. */
    if (nfds > 0 && nfds >= (size_t)max_fds) break;
    err = recv_one(fd, buf + offset, total - offset, max_fds, &r);
    if (err != 0) break;
    /* End of stream: a 0-byte stream read without fds. For seqpacket, 0 bytes without fds is EOF only once
     * the peer has hung up (otherwise it is an empty message). Datagram sockets have no end. Caveat,
     * documented: an empty message without fds that is the very last thing a peer sent before hanging up
     * is indistinguishable from the end, and is reported as the end. */
    if (r.n == 0 && r.ngot == 0 && r.flags == 0 && s->type != SOCK_DGRAM &&
        (s->type == SOCK_STREAM || seqpacket_at_eof(fd))) {
      eof = true;
      break;
    }
    if (r.ngot > 0 && nfds + r.ngot > fds_cap) {
      size_t cap = fds_cap * 2;
      while (cap < nfds + r.ngot) cap *= 2;
      int *grown = fds == fds_local ? malloc(cap * sizeof *grown) : realloc(fds, cap * sizeof *grown);
      if (grown == NULL) {
        close_fds(r.got, r.ngot);
        err = ENOMEM;
        break;
      }
      if (fds == fds_local) memcpy(grown, fds_local, nfds * sizeof *grown);
      fds = grown;
      fds_cap = cap;
    }
    memcpy(fds + nfds, r.got, r.ngot * sizeof(int));
    nfds += r.ngot;
    int32_t *m = meta_msgs + count * META_PER_MESSAGE;
    m[0] = (int32_t)offset;
    m[1] = (int32_t)r.n;
    m[2] = r.flags;
    m[3] = (int32_t)r.arrived;
    m[4] = (int32_t)r.ngot;
    /* A truncated datagram reports its full length: keep only what is in the buffer. */
    if ((size_t)r.n > total - offset) m[1] = (int32_t)(total - offset);
    offset += (size_t)m[1];
    count++;
  }

  if (count == 0) {
    if (fds != fds_local) free(fds);
    if (eof) return make_int32(env, 0);
    if (err == EAGAIN) return null_value;
    return throw_errno(env, err, err == ENOMEM ? "malloc" : "recvmsg");
  }
  /* An error after some messages: deliver those; a lasting error comes back on the next call (a reset is
   * reported once by the kernel, and JS reads on after one anyway). */

  napi_value batch = null_value;
  if (nfds > 0) {
    batch = fd_batch_wrap(env, fds, nfds);
    if (batch == NULL) {
      if (fds != fds_local) free(fds);
      return NULL;
    }
  }
  size_t meta_len = 1 + (size_t)count * META_PER_MESSAGE + nfds;
  void *meta_raw = NULL;
  napi_value meta_ab, meta;
  napi_status st = napi_create_arraybuffer(env, meta_len * sizeof(int32_t), &meta_raw, &meta_ab);
  if (st == napi_ok) st = napi_create_typedarray(env, napi_int32_array, meta_len, meta_ab, 0, &meta);
  if (st != napi_ok) {
    if (fds != fds_local) free(fds);
    return throw_napi_failure(env, st, "napi_create_arraybuffer"); /* the batch's finalizer closes the fds */
  }
  int32_t *out = meta_raw;
  out[0] = count;
  memcpy(out + 1, meta_msgs, (size_t)count * META_PER_MESSAGE * sizeof(int32_t));
  for (size_t i = 0; i < nfds; i++) out[1 + (size_t)count * META_PER_MESSAGE + i] = fds[i];
  if (fds != fds_local) free(fds);

  napi_value arr;
  NAPI_OK_OR_THROW(env, napi_create_array_with_length(env, 3, &arr));
  napi_set_element(env, arr, 0, data);
  napi_set_element(env, arr, 1, meta);
  napi_set_element(env, arr, 2, batch);
  return arr;
}

bool init_socket(napi_env env, napi_value exports) {
  addon_data *d = addon_get_data(env);
  if (d == NULL) return false;
  socket_registry *reg = calloc(1, sizeof *reg);
  if (reg == NULL) return false;
  if (napi_add_async_cleanup_hook(env, on_env_cleanup, reg, &reg->hook) != napi_ok) {
    free(reg);
    return false;
  }
  reg->env = env;
  d->sockets = reg;
  static const export_entry entries[] = {
      {"socketSetDispatcher", js_socket_set_dispatcher},
      {"socketPair", js_socket_pair},
      {"socketConnect", js_socket_connect},
      {"socketError", js_socket_error},
      {"socketListen", js_socket_listen},
      {"socketAccept", js_socket_accept},
      {"socketInspect", js_socket_inspect},
      {"socketAdopt", js_socket_adopt},
      {"socketAttach", js_socket_attach},
      {"socketPoll", js_socket_poll},
      {"socketClose", js_socket_close},
      {"socketFd", js_socket_fd},
      {"socketShutdown", js_socket_shutdown},
      {"socketPeerCred", js_socket_peer_cred},
      {"socketSetBufferSize", js_socket_set_buffer_size},
      {"socketSend", js_socket_send},
      {"socketSendBatch", js_socket_send_batch},
      {"socketRecvBatch", js_socket_recv_batch},
  };
  return export_functions(env, exports, entries, sizeof entries / sizeof entries[0]);
}
