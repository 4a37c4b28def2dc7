/* Owned fds: the process-wide owned-fd table, and fd handles. The lifetime rules are in handle.h. */
#include "handle.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

static const napi_type_tag FD_HANDLE_TAG = {0x6d656d6664686e64ULL, 0x9b1f5e0c2a7d4431ULL};

/* ---------- the owned-fd table ----------
 * fd number -> the claim that owns it, process-wide (fds are per process; owners live in any env/thread).
 * Another thread may read only the immutable fields of a claim it finds here (kind, env, handle), and the
 * mutable fields of a handle only once it knows the handle belongs to its own env. */
static pthread_mutex_t owned_lock = PTHREAD_MUTEX_INITIALIZER;
static fd_claim **owned_fds;
static size_t owned_capacity;

/* Caller holds owned_lock. */
static bool table_set(int fd, fd_claim *owner) {
  if ((size_t)fd >= owned_capacity) {
    if (owner == NULL) return true;
    size_t capacity = owned_capacity ? owned_capacity : 1024;
    while (capacity <= (size_t)fd) capacity *= 2;
    fd_claim **grown = realloc(owned_fds, capacity * sizeof *grown);
    if (grown == NULL) return false;
    memset(grown + owned_capacity, 0, (capacity - owned_capacity) * sizeof *grown);
    owned_fds = grown;
    owned_capacity = capacity;
  }
  owned_fds[fd] = owner;
  return true;
}

/* Caller holds owned_lock. */
static fd_claim *table_get(int fd) {
  return fd >= 0 && (size_t)fd < owned_capacity ? owned_fds[fd] : NULL;
}

static int identity_of(int fd, dev_t *dev, ino_t *ino) {
  struct stat st;
  if (sys_fstat(fd, &st) != 0) return errno;
  *dev = st.st_dev;
  *ino = st.st_ino;
  return 0;
}

/* kcmp(2) compares two fds of this process by open file description: exact, where inode identity cannot
 * tell two opens of one file apart, and one syscall instead of an fstat when handing out plus one when
 * closing. Seccomp profiles (Docker's default) and kernels without CONFIG_KCMP refuse it: probed once,
 * with st_dev/st_ino as the fallback. */
static int kcmp_state; /* 0 not probed, 1 usable, 2 refused: two threads probing at once agree, so no lock
                          (and no pthread_once, which would raise the glibc floor to 2.34) */

static long kcmp_files(int a, int b) {
  pid_t pid = getpid();
  return syscall(SYS_kcmp, pid, pid, KCMP_FILE, a, b);
}

static bool kcmp_available(void) {
  int state = __atomic_load_n(&kcmp_state, __ATOMIC_ACQUIRE);
  if (state == 0) {
    int fd = open("/", O_RDONLY | O_CLOEXEC | O_DIRECTORY);
    state = fd >= 0 && kcmp_files(fd, fd) == 0 ? 1 : 2;
    if (fd >= 0) close(fd);
    __atomic_store_n(&kcmp_state, state, __ATOMIC_RELEASE);
  }
  return state == 1;
}

/* Caller holds owned_lock. True when `c` (found in the table for its number) still owns what the number
 * refers to now. A private number was never handed out, so only the table can say otherwise. */
static bool claim_still_ours(const fd_claim *c) {
  if (table_get(c->fd) != c) return false;
  if (!c->exposed) return true;
  if (c->twin >= 0) return kcmp_files(c->fd, c->twin) == 0;
  dev_t dev;
  ino_t ino;
  return identity_of(c->fd, &dev, &ino) == 0 && dev == c->dev && ino == c->ino;
}

void fd_claim_init(fd_claim *c, fd_kind kind, napi_env env, fd_handle *handle) {
  memset(c, 0, sizeof *c);
  c->fd = -1;
  c->twin = -1;
  c->kind = (uint8_t)kind;
  c->env = env;
  c->handle = handle;
}

int fd_claim_fresh(fd_claim *c, int fd, bool exposed, int twin) {
  dev_t dev = 0;
  ino_t ino = 0;
  if (twin >= 0 && !(exposed && kcmp_available())) twin = -1;
  /* Outside the lock: a fresh number is ours, nobody else can close it before we return it to JS. */
  if (exposed && twin < 0) {
    int err = identity_of(fd, &dev, &ino);
    if (err != 0) return err;
  }
  pthread_mutex_lock(&owned_lock);
  bool marked = table_set(fd, c);
  if (marked) {
    c->fd = fd;
    c->exposed = exposed;
    c->twin = twin;
    c->dev = dev;
    c->ino = ino;
  }
  pthread_mutex_unlock(&owned_lock);
  return marked ? 0 : ENOMEM;
}

/* Caller holds owned_lock. The received handle of `env` that owns fd through `cur` and may hand it over. */
static fd_handle *claimable_locked(napi_env env, fd_claim *cur, int fd) {
  if (cur->kind != FD_KIND_RECEIVED || cur->env != env || cur->handle == NULL) return NULL;
  fd_handle *h = cur->handle; /* same env: its mutable fields are ours to read */
  if (h->closed || h->fd != fd || &h->own != cur || h->in_flight > 0 || h->pins > 0) return NULL;
  return h;
}

bool fd_claim_adopt(napi_env env, fd_claim *c, int fd) {
  dev_t dev;
  ino_t ino;
  int err = identity_of(fd, &dev, &ino);
  if (err != 0) {
    throw_errno(env, err, "fstat");
    return false;
  }
  pthread_mutex_lock(&owned_lock);
  fd_claim *cur = table_get(fd);
  fd_handle *from = NULL;
  if (cur != NULL) {
    from = claimable_locked(env, cur, fd);
    /* An exposed entry whose file is gone is stale: its owner lost the number (closed by hand) and the
     * caller now holds something else under it, which is the caller's to give. */
    bool stale = from == NULL && !claim_still_ours(cur);
    if (from == NULL && !stale) {
      pthread_mutex_unlock(&owned_lock);
      napi_throw_error(env, "ERR_MEMFD_FD_ALREADY_OWNED",
                       "This fd is already owned by another memfd object in this process; to give a file to a "
                       "Worker, send it file.dup().releaseFd() (or msg.take() for a received fd) instead");
      return false;
    }
  }
  if (!table_set(fd, c)) {
    pthread_mutex_unlock(&owned_lock);
    throw_errno(env, ENOMEM, "malloc");
    return false;
  }
  c->fd = fd;
  c->exposed = true;
  c->twin = -1;
  c->dev = dev;
  c->ino = ino;
  if (from != NULL) {
    /* The message's handle no longer owns anything: its close and finalizer become no-ops. */
    from->own.fd = -1;
    from->fd = -1;
    from->closed = true;
  }
  pthread_mutex_unlock(&owned_lock);
  return true;
}

claim_close_result fd_claim_close(fd_claim *c) {
  if (c->fd < 0) return CLAIM_EMPTY;
  claim_close_result result = CLAIM_NOT_OURS;
  /* Check and close under one lock, so a number the kernel hands out again right after close() is only
   * ever marked by its new owner after we unmarked it. */
  pthread_mutex_lock(&owned_lock);
  if (claim_still_ours(c)) {
    /* Linux always releases the descriptor, even when close reports EINTR: never retry. */
    close(c->fd);
    result = CLAIM_CLOSED;
  }
  if (table_get(c->fd) == c) table_set(c->fd, NULL);
  c->fd = -1;
  pthread_mutex_unlock(&owned_lock);
  return result;
}

void fd_claim_forget(fd_claim *c) {
  if (c->fd < 0) return;
  pthread_mutex_lock(&owned_lock);
  if (table_get(c->fd) == c) table_set(c->fd, NULL);
  c->fd = -1;
  pthread_mutex_unlock(&owned_lock);
}

/* Hands the number of `c` to the caller if it is still ours: returns it (unlinked), or -1. */
static int fd_claim_give(fd_claim *c) {
  if (c->fd < 0) return -1;
  pthread_mutex_lock(&owned_lock);
  int fd = claim_still_ours(c) ? c->fd : -1;
  if (table_get(c->fd) == c) table_set(c->fd, NULL);
  c->fd = -1;
  pthread_mutex_unlock(&owned_lock);
  return fd;
}

bool fd_received_here(napi_env env, int fd) {
  pthread_mutex_lock(&owned_lock);
  fd_claim *cur = table_get(fd);
  bool claimable = cur != NULL && claimable_locked(env, cur, fd) != NULL;
  pthread_mutex_unlock(&owned_lock);
  return claimable;
}

bool fd_owned_is(int fd) {
  pthread_mutex_lock(&owned_lock);
  fd_claim *c = table_get(fd);
  bool owned = c != NULL && claim_still_ours(c);
  pthread_mutex_unlock(&owned_lock);
  return owned;
}

/* ---------- fd handles ---------- */

/* ---------- number handles (MemFile) ----------
 * A MemFile's handle is a negative JS number naming a slot of this process-wide table plus the slot's
 * generation, not an external with a finalizer: Node-API's finalizer machinery (a weak global handle, a
 * reference object and its tracker, a queued second-pass callback, two mallocs) cost more than the two
 * syscalls of create()+close(). The GC safety net is MemFile's FinalizationRegistry, which calls
 * handleRelease(); env teardown closes what is left (slots_teardown).
 *  - A number is only ever honoured while its slot holds the same generation: a slot's generation moves on
 *    when it is freed, so a stale number (a closed MemFile's, should one reach native code) finds nothing
 *    and gets "closed" answers (the `stale` record below), never someone else's file.
 *  - A slot is reused only once SLOT_REUSE_DEPTH others are free (FIFO), so a (slot, generation) pair comes
 *    back only after more than 2 million frees (2047 generations x 1024). Stale numbers are a second line
 *    of defence anyway: MemFile checks `closed` before it calls native code, and drops its registry entry
 *    when it closes or releases its fd, so no registry callback ever carries a freed number.
 *  - Ids stay below 2^31, so V8 keeps them as small integers (no heap number per MemFile).
 *  - Slots are allocated and freed under slot_lock by the owner's thread; lookups (any thread, its own
 *    numbers only) read the chunk pointer, generation and record atomically and then check the env. */
#define SLOT_CHUNK_BITS 10
#define SLOT_CHUNK (1u << SLOT_CHUNK_BITS)
#define SLOT_BITS 20 /* 1 M MemFiles open at once: each holds an fd, and Linux's default nr_open is 1 M */
#define SLOT_LIMIT (1u << SLOT_BITS)
#define SLOT_GEN_LIMIT (1u << 11) /* gen * 2^20 + slot stays below 2^31: a small integer in V8 */
#define SLOT_REUSE_DEPTH 1024

typedef struct handle_slot {
  fd_handle *h;       /* &record while in use, NULL when free */
  uint32_t gen;       /* 1.. ; bumped when freed */
  uint32_t next_free; /* FIFO link while free */
  fd_handle record;   /* in place: chunks are never freed, so pointers to it (in-flight work, the owned-fd
                         table's claims) stay valid memory; no malloc per MemFile */
} handle_slot;

static pthread_mutex_t slot_lock = PTHREAD_MUTEX_INITIALIZER;
static handle_slot *slot_chunks[SLOT_LIMIT / SLOT_CHUNK];
static uint32_t slots_used;            /* slots ever handed out: [0, slots_used) exist */
static uint32_t free_head = UINT32_MAX, free_tail = UINT32_MAX, free_count;

static handle_slot *slot_at(uint32_t i) {
  handle_slot *chunk = __atomic_load_n(&slot_chunks[i >> SLOT_CHUNK_BITS], __ATOMIC_ACQUIRE);
  return chunk == NULL ? NULL : &chunk[i & (SLOT_CHUNK - 1)];
}

/* A zeroed record in a slot and its id (gen * SLOT_LIMIT + slot); NULL when the table is full or out of
 * memory. */
static fd_handle *slot_alloc(napi_env env, double *id) {
  pthread_mutex_lock(&slot_lock);
  uint32_t i;
  handle_slot *s;
  if (free_count > SLOT_REUSE_DEPTH || (slots_used == SLOT_LIMIT && free_count > 0)) {
    i = free_head;
    s = slot_at(i);
    free_head = s->next_free;
    if (--free_count == 0) free_tail = UINT32_MAX;
  } else if (slots_used < SLOT_LIMIT) {
    i = slots_used;
    if (slot_chunks[i >> SLOT_CHUNK_BITS] == NULL) {
      handle_slot *chunk = calloc(SLOT_CHUNK, sizeof *chunk);
      if (chunk == NULL) {
        pthread_mutex_unlock(&slot_lock);
        return NULL;
      }
      for (uint32_t k = 0; k < SLOT_CHUNK; k++) chunk[k].gen = 1;
      __atomic_store_n(&slot_chunks[i >> SLOT_CHUNK_BITS], chunk, __ATOMIC_RELEASE);
    }
    slots_used++;
    s = slot_at(i);
  } else {
    pthread_mutex_unlock(&slot_lock);
    return NULL;
  }
  if (s == NULL) { /* cannot happen: the chunk of every slot below slots_used exists */
    pthread_mutex_unlock(&slot_lock);
    return NULL;
  }
  fd_handle *h = &s->record;
  memset(h, 0, sizeof *h);
  h->slot = (int32_t)i;
  h->env = env; /* under the lock: slots_teardown of another env reads it */
  __atomic_store_n(&s->h, h, __ATOMIC_RELEASE);
  uint32_t gen = s->gen;
  pthread_mutex_unlock(&slot_lock);
  *id = (double)gen * SLOT_LIMIT + i;
  return h;
}

static void slot_free(fd_handle *h) {
  if (h->slot < 0) return;
  uint32_t i = (uint32_t)h->slot;
  pthread_mutex_lock(&slot_lock);
  handle_slot *s = slot_at(i);
  __atomic_store_n(&s->h, NULL, __ATOMIC_RELEASE);
  uint32_t gen = s->gen + 1;
  __atomic_store_n(&s->gen, gen >= SLOT_GEN_LIMIT ? 1 : gen, __ATOMIC_RELEASE);
  s->next_free = UINT32_MAX;
  if (free_tail == UINT32_MAX) free_head = i;
  else slot_at(free_tail)->next_free = i;
  free_tail = i;
  free_count++;
  pthread_mutex_unlock(&slot_lock);
  h->slot = -1;
}

/* What a stale number unwraps to: closed, owning nothing. Nothing writes to it (every writer checks
 * `closed` or `fd` first). */
static fd_handle stale_handle = {.fd = -1, .closed = true, .slot = -1, .own = {.fd = -1, .twin = -1},
                                 .shown = {.fd = -1, .twin = -1}};

/* The record a handle number names in `env`: NULL when it names nothing live (stale), or when the value
 * is not a handle number (*valid = false). */
static fd_handle *slot_lookup(napi_env env, double id, bool *valid) {
  *valid = false;
  if (!(id < 0)) return NULL;
  double v = -id;
  if (v != floor(v) || v >= (double)SLOT_GEN_LIMIT * SLOT_LIMIT) return NULL;
  *valid = true;
  uint64_t n = (uint64_t)v;
  uint32_t i = (uint32_t)(n & (SLOT_LIMIT - 1));
  uint32_t gen = (uint32_t)(n >> SLOT_BITS);
  if (i >= SLOT_LIMIT) return NULL;
  handle_slot *s = slot_at(i);
  if (s == NULL || __atomic_load_n(&s->gen, __ATOMIC_ACQUIRE) != gen) return NULL;
  fd_handle *h = __atomic_load_n(&s->h, __ATOMIC_ACQUIRE);
  if (h == NULL || h->env != env || __atomic_load_n(&s->gen, __ATOMIC_ACQUIRE) != gen) return NULL;
  return h;
}

static int handle_report_fd(const fd_handle *h) { return h->shown.fd >= 0 ? h->shown.fd : h->fd; }

/* Closes both numbers of a handle. Returns the handed-out number that was left alone because it was no
 * longer ours, or -1. A received fd closed by hand is the contract (msg.fds are the caller's), not a
 * mistake, so it is not reported. */
static int really_close(fd_handle *h, bool *closed_any) {
  int not_ours = -1;
  int shown = h->shown.fd;
  if (fd_claim_close(&h->shown) == CLAIM_NOT_OURS) not_ours = shown;
  int own = h->fd;
  claim_close_result r = fd_claim_close(&h->own);
  if (r == CLAIM_NOT_OURS && h->kind != FD_KIND_RECEIVED && not_ours < 0) not_ours = own;
  if (closed_any) *closed_any = r == CLAIM_CLOSED;
  h->fd = -1;
  return h->kind == FD_KIND_INTERNAL ? -1 : not_ours;
}

/* A close that happens outside a JS call (deferred until pool work ends, or a finalizer). */
static void close_and_notify(fd_handle *h, bool forgotten) {
  int report = handle_report_fd(h);
  bool closed_any = false;
  int not_ours = really_close(h, &closed_any);
  if (not_ours >= 0) notice_post(h->env, NOTICE_NOT_OURS, h->kind, not_ours);
  if (forgotten && closed_any && h->kind != FD_KIND_INTERNAL) notice_post(h->env, NOTICE_GC_CLOSED, h->kind, report);
}

/* An external's record goes with its finalizer; a number handle's record (and slot) once it is closed and
 * nothing in flight or pinned still uses it (after handleRelease, pins no longer count: whoever pinned it
 * kept the MemFile alive, so a released record has no pinner left). */
static void maybe_free(fd_handle *h) {
  if (h->in_flight != 0) return;
  if (h->slot >= 0) {
    if (h->closed && h->fd < 0 && h->shown.fd < 0 && (h->pins == 0 || h->finalized)) slot_free(h);
    return;
  }
  if (h->finalized) free(h);
}

static void finalize_handle(napi_env env, void *data, void *hint) {
  fd_handle *h = data;
  h->forgotten = !h->closed;
  h->closed = true;
  h->finalized = true;
  if (h->in_flight == 0) close_and_notify(h, h->forgotten);
  maybe_free(h);
}

/* A handle with no fd yet: a number handle for a MemFile (FD_KIND_FILE), else a tagged external (the
 * library's internal copies, which no JS object owns). NULL with an exception pending on failure; a
 * number handle that never got its fd must be given to discard_handle(). */
static void init_record(fd_handle *h, napi_env env, fd_kind kind) {
  h->fd = -1;
  h->kind = (uint8_t)kind;
  h->cloexec = -1;
  if (h->slot < 0) h->env = env; /* a slot's record got it from slot_alloc, under the lock */
  fd_claim_init(&h->own, kind, env, h);
  fd_claim_init(&h->shown, kind, env, h);
}

static napi_value new_handle(napi_env env, fd_kind kind, fd_handle **out) {
  if (kind == FD_KIND_FILE) {
    double id = 0;
    fd_handle *h = slot_alloc(env, &id);
    if (h == NULL) {
      throw_errno(env, ENOMEM, "malloc");
      return NULL;
    }
    init_record(h, env, kind);
    napi_value number;
    if (napi_create_double(env, -id, &number) != napi_ok) {
      slot_free(h);
      throw_napi_failure(env, napi_generic_failure, "napi_create_double");
      return NULL;
    }
    *out = h;
    return number;
  }
  fd_handle *h = calloc(1, sizeof *h);
  if (h == NULL) {
    throw_errno(env, ENOMEM, "malloc");
    return NULL;
  }
  h->slot = -1;
  init_record(h, env, kind);
  napi_value external;
  if (napi_create_external(env, h, finalize_handle, NULL, &external) != napi_ok) {
    free(h);
    throw_napi_failure(env, napi_generic_failure, "napi_create_external");
    return NULL;
  }
  if (napi_type_tag_object(env, external, &FD_HANDLE_TAG) != napi_ok) {
    h->closed = true; /* the finalizer owns h and finds nothing to close */
    throw_napi_failure(env, napi_generic_failure, "napi_type_tag_object");
    return NULL;
  }
  *out = h;
  return external;
}

/* A handle from new_handle that never came to own its numbers (a failed construction): JS never saw it. */
static void discard_handle(fd_handle *h) {
  h->closed = true;
  if (h->slot >= 0) maybe_free(h); /* an external's record is freed by its finalizer */
}

napi_value fd_handle_wrap(napi_env env, int fd, fd_kind kind, int cloexec, fd_handle **out) {
  fd_handle *h;
  napi_value value = new_handle(env, kind, &h);
  if (value == NULL) return NULL;
  h->cloexec = (int8_t)cloexec;
  /* A received fd is in msg.fds from the start: it is exposed, so its identity is recorded. */
  int err = fd_claim_fresh(&h->own, fd, kind == FD_KIND_RECEIVED, -1);
  if (err != 0) {
    discard_handle(h);
    throw_errno(env, err, err == ENOMEM ? "malloc" : "fstat");
    return NULL;
  }
  h->fd = fd;
  if (out) *out = h;
  return value;
}

fd_handle *fd_handle_unwrap(napi_env env, napi_value v) {
  double id;
  if (napi_get_value_double(env, v, &id) == napi_ok) {
    bool valid;
    fd_handle *h = slot_lookup(env, id, &valid);
    if (h != NULL) return h;
    if (valid) return &stale_handle;
  }
  return unwrap_tagged(env, v, &FD_HANDLE_TAG, "a memfd native handle");
}

int fd_handle_open_fd(napi_env env, fd_handle *h, const char *syscall) {
  if (h->closed || h->fd < 0) {
    throw_errno(env, EBADF, syscall);
    return -1;
  }
  return h->fd;
}

int fd_handle_args(napi_env env, napi_callback_info info, size_t argc, napi_value *argv, fd_handle **h,
                   const char *syscall) {
  if (!get_args(env, info, argc, argv, NULL)) return -1;
  *h = fd_handle_unwrap(env, argv[0]);
  if (*h == NULL) return -1;
  return fd_handle_open_fd(env, *h, syscall);
}

int fd_handle_acquire(napi_env env, fd_handle *h, const char *syscall) {
  int fd = fd_handle_open_fd(env, h, syscall);
  if (fd >= 0) h->in_flight++;
  return fd;
}

void fd_handle_release(fd_handle *h) {
  h->in_flight--;
  if (h->in_flight == 0 && (h->pins == 0 || h->finalized) && h->closed) close_and_notify(h, h->forgotten);
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
  if (h->pins == 0 && h->in_flight == 0 && h->closed) close_and_notify(h, false);
  maybe_free(h);
}

/* ---------- receive batches ---------- */

static const napi_type_tag FD_BATCH_TAG = {0x6d656d6664626174ULL, 0x2c71d0a95e3b86f4ULL};

struct fd_batch {
  napi_env env;
  uint32_t count;
  fd_handle h[]; /* embedded records: the owned-fd table may point at their `own` claims */
};

static void finalize_batch(napi_env env, void *data, void *hint) {
  fd_batch *b = data;
  int forgotten_fd = -1;
  for (uint32_t i = 0; i < b->count; i++) {
    fd_handle *h = &b->h[i];
    bool forgotten = !h->closed;
    int report = h->fd;
    h->closed = true;
    h->finalized = true;
    bool closed_any = false;
    really_close(h, &closed_any); /* received fds closed by hand are the contract: never reported */
    if (forgotten && closed_any && forgotten_fd < 0) forgotten_fd = report;
  }
  /* One notice per batch (warnings.ts shows one per kind and thread anyway). */
  if (forgotten_fd >= 0) notice_post(b->env, NOTICE_GC_CLOSED, FD_KIND_RECEIVED, forgotten_fd);
  free(b);
}

napi_value fd_batch_wrap(napi_env env, const int *fds, size_t n) {
  fd_batch *b = calloc(1, sizeof *b + n * sizeof b->h[0]);
  if (b == NULL) {
    for (size_t i = 0; i < n; i++) close(fds[i]);
    throw_errno(env, ENOMEM, "malloc");
    return NULL;
  }
  b->env = env;
  b->count = (uint32_t)n;
  for (size_t i = 0; i < n; i++) {
    fd_handle *h = &b->h[i];
    h->fd = -1;
    h->closed = true; /* until it owns its number */
    h->kind = FD_KIND_RECEIVED;
    h->env = env;
    h->slot = -1;
    fd_claim_init(&h->own, FD_KIND_RECEIVED, env, h);
    fd_claim_init(&h->shown, FD_KIND_RECEIVED, env, h);
  }
  napi_value external;
  if (napi_create_external(env, b, finalize_batch, NULL, &external) != napi_ok) {
    free(b);
    for (size_t i = 0; i < n; i++) close(fds[i]);
    throw_napi_failure(env, napi_generic_failure, "napi_create_external");
    return NULL;
  }
  /* From here the finalizer owns b and closes whatever records own. */
  if (napi_type_tag_object(env, external, &FD_BATCH_TAG) != napi_ok) {
    for (size_t i = 0; i < n; i++) close(fds[i]);
    throw_napi_failure(env, napi_generic_failure, "napi_type_tag_object");
    return NULL;
  }
  for (size_t i = 0; i < n; i++) {
    fd_handle *h = &b->h[i];
    /* Not exposed yet: JS has not seen the number (msg.fds is read lazily). batchExpose records the
     * identity when it is handed out; until then the number is as private as a MemFile's own fd. */
    int err = fd_claim_fresh(&h->own, fds[i], false, -1);
    if (err != 0) {
      for (size_t j = i; j < n; j++) close(fds[j]);
      throw_errno(env, err, err == ENOMEM ? "malloc" : "fstat");
      return NULL;
    }
    h->fd = fds[i];
    h->closed = false;
  }
  return external;
}

static fd_batch *batch_unwrap(napi_env env, napi_value v) {
  return unwrap_tagged(env, v, &FD_BATCH_TAG, "a memfd receive batch");
}

/* Arguments (batch, index[, count]) with index..index+count inside the batch. */
static fd_batch *batch_args(napi_env env, napi_callback_info info, size_t argc, uint32_t *index, uint32_t *count) {
  napi_value argv[3];
  if (!get_args(env, info, argc, argv, NULL)) return NULL;
  fd_batch *b = batch_unwrap(env, argv[0]);
  if (b == NULL) return NULL;
  int32_t i = 0, c = 1;
  if (!get_int32_arg(env, argv[1], &i, "index")) return NULL;
  if (argc > 2 && !get_int32_arg(env, argv[2], &c, "count")) return NULL;
  if (i < 0 || c < 0 || (uint32_t)i > b->count || (uint32_t)c > b->count - (uint32_t)i) {
    throw_range_error(env, "ERR_OUT_OF_RANGE", "index outside the receive batch");
    return NULL;
  }
  *index = (uint32_t)i;
  *count = (uint32_t)c;
  return b;
}

/* batchExpose(batch, index, count): the numbers of these records are being handed to JS (the first read of
 * msg.fds): record the identity of each open one (fstat outside the lock, stored under it, as
 * fd_claim_fresh does). From then on every close of it verifies identity first. */
static napi_value js_batch_expose(napi_env env, napi_callback_info info) {
  uint32_t i, c;
  fd_batch *b = batch_args(env, info, 3, &i, &c);
  if (b == NULL) return NULL;
  for (uint32_t k = i; k < i + c; k++) {
    fd_handle *h = &b->h[k];
    if (h->closed || h->fd < 0 || h->own.exposed) continue;
    dev_t dev;
    ino_t ino;
    int err = identity_of(h->fd, &dev, &ino);
    if (err != 0) return throw_errno(env, err, "fstat");
    pthread_mutex_lock(&owned_lock);
    h->own.dev = dev;
    h->own.ino = ino;
    h->own.exposed = true;
    pthread_mutex_unlock(&owned_lock);
  }
  return make_undefined(env);
}

/* batchTake(batch, index) -> the fd, which the batch forgets (the caller owns it now), or -1 when it was
 * already taken, adopted (MemFile.fromFd...) or closed through its message. */
static napi_value js_batch_take(napi_env env, napi_callback_info info) {
  uint32_t i, c;
  fd_batch *b = batch_args(env, info, 2, &i, &c);
  if (b == NULL) return NULL;
  if (i >= b->count) return throw_range_error(env, "ERR_OUT_OF_RANGE", "index outside the receive batch");
  fd_handle *h = &b->h[i];
  if (h->closed || h->fd < 0) return make_int32(env, -1);
  int fd = h->fd;
  fd_claim_forget(&h->own);
  h->fd = -1;
  h->closed = true;
  return make_int32(env, fd);
}

/* batchClose(batch, index, count): closes the fds of one message that nobody took, adopted or closed by
 * hand (after the identity check: a number closed by hand and reused is left alone). */
static napi_value js_batch_close(napi_env env, napi_callback_info info) {
  uint32_t i, c;
  fd_batch *b = batch_args(env, info, 3, &i, &c);
  if (b == NULL) return NULL;
  for (uint32_t k = i; k < i + c; k++) {
    fd_handle *h = &b->h[k];
    if (h->closed) continue;
    h->closed = true;
    really_close(h, NULL);
  }
  return make_undefined(env);
}

/* ---------- JS functions ---------- */

/* handleFd(handle) -> the number JS may see and give away, or -1 once closed. A MemFile's is a duplicate
 * made on first use: closing it by hand (fs.closeSync) cannot touch the fd the library works with. It
 * keeps the close-on-exec flag the file was created with; the private fd is close-on-exec from then on. */
static napi_value js_handle_fd(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv, NULL)) return NULL;
  fd_handle *h = fd_handle_unwrap(env, argv[0]);
  if (h == NULL) return NULL;
  if (h->closed || h->fd < 0) return make_int32(env, -1);
  if (h->own.exposed) return make_int32(env, h->fd);
  if (h->shown.fd >= 0) return make_int32(env, h->shown.fd);
  int cloexec = h->cloexec;
  if (cloexec < 0) {
    int flags = fcntl(h->fd, F_GETFD);
    if (flags < 0) return throw_errno(env, errno, "fcntl");
    cloexec = (flags & FD_CLOEXEC) != 0;
  }
  int shown = fcntl(h->fd, cloexec ? F_DUPFD_CLOEXEC : F_DUPFD, 0);
  if (shown < 0) return throw_errno(env, errno, "fcntl");
  int err = fd_claim_fresh(&h->shown, shown, true, h->fd);
  if (err != 0) {
    close(shown);
    return throw_errno(env, err, err == ENOMEM ? "malloc" : "fstat");
  }
  if (!cloexec) {
    fcntl(h->fd, F_SETFD, FD_CLOEXEC);
    h->cloexec = 1; /* the private fd's flag from now on; `shown` keeps the one the caller asked for */
  }
  return make_int32(env, shown);
}

/* handleOwnFd(handle) -> the private fd, or -1 once closed. For the library's own synchronous fast paths
 * (getSealsFd); never returned to users. */
static napi_value js_handle_own_fd(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv, NULL)) return NULL;
  fd_handle *h = fd_handle_unwrap(env, argv[0]);
  if (h == NULL) return NULL;
  return make_int32(env, h->closed ? -1 : h->fd);
}

/* handleClose(handle) -> -1 already closed; -2 closed (or closing once pool work ends); n >= 0 closed, but
 * the handed-out number n no longer referred to this file (closed by hand, maybe reused) and was left
 * alone: JS warns. */
static napi_value js_handle_close(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv, NULL)) return NULL;
  fd_handle *h = fd_handle_unwrap(env, argv[0]);
  if (h == NULL) return NULL;
  if (h->closed) return make_int32(env, -1);
  h->closed = true;
  int not_ours = -1;
  if (h->in_flight == 0 && h->pins == 0) {
    not_ours = really_close(h, NULL);
  } else if (h->shown.fd >= 0) {
    /* Pool work and queued sends use the private fd: the handed-out number can go now. */
    int shown = h->shown.fd;
    if (fd_claim_close(&h->shown) == CLAIM_NOT_OURS && h->kind != FD_KIND_INTERNAL) not_ours = shown;
  }
  maybe_free(h); /* a number handle with nothing in flight: its number is stale from here on */
  return make_int32(env, not_ours >= 0 ? not_ours : -2);
}

/* handleRelease(handle) -> the number its MEMFD_CLOSED_BY_GC notice names (the handed-out one if any, as
 * every notice does), or -1 when nothing was left open. The MemFile that owned this number handle was
 * collected (its FinalizationRegistry callback): closes what it still owns, once, and says so; a stale
 * number (closed before) is a no-op. Pins no longer count: a pinner keeps the MemFile alive, so none is
 * left. */
static napi_value js_handle_release(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv, NULL)) return NULL;
  fd_handle *h = fd_handle_unwrap(env, argv[0]);
  if (h == NULL) return NULL;
  if (h == &stale_handle || h->slot < 0 || h->finalized) return make_int32(env, -1);
  h->forgotten = !h->closed;
  int report = h->forgotten ? handle_report_fd(h) : -1;
  h->closed = true;
  h->finalized = true;
  if (h->in_flight == 0) close_and_notify(h, h->forgotten);
  maybe_free(h);
  return make_int32(env, report);
}

/* Env teardown (a Worker ends, or the process exits): registry callbacks no longer run, so the number
 * handles of this env are closed here, as finalizers close externals. In-flight pool work has been
 * cancelled or completed by now (libuv drains before env cleanup hooks run). */
static void slots_teardown(void *arg) {
  napi_env env = arg;
  /* Collected under the lock (env is only written under it), handled outside it (closing frees slots).
   * Records of this env cannot go away meanwhile: only this thread frees them. */
  fd_handle **mine = NULL;
  size_t count = 0, capacity = 0;
  pthread_mutex_lock(&slot_lock);
  for (uint32_t i = 0; i < slots_used; i++) {
    handle_slot *s = slot_at(i);
    fd_handle *h = s == NULL ? NULL : s->h;
    if (h == NULL || h->env != env) continue; /* other envs' records are theirs */
    if (count == capacity) {
      size_t grown_capacity = capacity ? capacity * 2 : 64;
      fd_handle **grown = realloc(mine, grown_capacity * sizeof *grown);
      if (grown == NULL) break; /* out of memory at teardown: the process closes what is left at exit */
      mine = grown;
      capacity = grown_capacity;
    }
    mine[count++] = h;
  }
  pthread_mutex_unlock(&slot_lock);
  for (size_t k = 0; k < count; k++) {
    fd_handle *h = mine[k];
    if (h->finalized) continue;
    h->forgotten = !h->closed;
    h->closed = true;
    h->finalized = true;
    if (h->in_flight == 0) {
      close_and_notify(h, false);
      maybe_free(h);
    }
  }
  free(mine);
}

/* handleAdopt(fd) -> handle that owns fd, which JS has checked to be a memfd. The handle works on a
 * private duplicate; fd stays the number JS sees. A received fd still owned by its message in this env
 * is handed over (the message lets go only on success); any other owned fd is refused. */
static napi_value js_handle_adopt(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv, NULL)) return NULL;
  int32_t fd;
  if (!get_int32_arg(env, argv[0], &fd, "fd")) return NULL;
  if (fd < 0) return throw_range_error(env, "ERR_OUT_OF_RANGE", "The \"fd\" argument must be >= 0");
  fd_handle *h;
  napi_value value = new_handle(env, FD_KIND_FILE, &h);
  if (value == NULL) return NULL;
  h->closed = true; /* until it owns both numbers */
  int own = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (own < 0) {
    int err = errno;
    discard_handle(h);
    return throw_errno(env, err, "fcntl");
  }
  int err = fd_claim_fresh(&h->own, own, false, -1);
  if (err != 0) {
    close(own);
    discard_handle(h);
    return throw_errno(env, err, "malloc");
  }
  h->fd = own;
  h->cloexec = 1;
  if (!fd_claim_adopt(env, &h->shown, fd)) {
    fd_claim_close(&h->own);
    h->fd = -1;
    discard_handle(h);
    return NULL;
  }
  h->closed = false;
  return value;
}

/* handleDetach(handle) -> fd: the handle gives up ownership without closing, and the caller owns the
 * number it was shown (or, if that one was closed by hand meanwhile, the private one). */
static napi_value js_handle_detach(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv, NULL)) return NULL;
  fd_handle *h = fd_handle_unwrap(env, argv[0]);
  if (h == NULL) return NULL;
  if (h->closed || h->fd < 0 || h->in_flight > 0 || h->pins > 0) return throw_errno(env, EBADF, "detach");
  int fd = fd_claim_give(&h->shown);
  if (fd >= 0) {
    fd_claim_close(&h->own);
  } else {
    fd = h->fd;
    fd_claim_forget(&h->own);
  }
  h->fd = -1;
  h->closed = true;
  maybe_free(h);
  return make_int32(env, fd);
}

/* handlePin(handle): a queued send holds the fd; closing the owner (a MemFile) defers close(2) until
 * handleUnpin. Cheaper than a dup under heavy backpressure: no extra fd per queued message. */
static napi_value js_handle_pin(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv, NULL)) return NULL;
  fd_handle *h = fd_handle_unwrap(env, argv[0]);
  if (h == NULL) return NULL;
  if (!fd_handle_pin(env, h, "sendmsg")) return NULL;
  return make_undefined(env);
}

static napi_value js_handle_unpin(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv, NULL)) return NULL;
  fd_handle *h = fd_handle_unwrap(env, argv[0]);
  if (h == NULL) return NULL;
  if (h->pins == 0) return throw_type_error(env, "ERR_MEMFD_INTERNAL", "handle is not pinned");
  fd_handle_unpin(h);
  return make_undefined(env);
}

/* dupFd(fd) -> handle of a close-on-exec duplicate (queued sends keep their own copy, so the caller
 * may close the original at once and a reused number is never sent). */
static napi_value js_dup_fd(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv, NULL)) return NULL;
  int32_t fd;
  if (!get_int32_arg(env, argv[0], &fd, "fd")) return NULL;
  int copy = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  if (copy < 0) return throw_errno(env, errno, "fcntl");
  napi_value h = fd_handle_wrap(env, copy, FD_KIND_INTERNAL, 1, NULL);
  if (h == NULL) close(copy);
  return h;
}

/* fdOwned(fd) -> true when an object of this process owns the number (diagnostics and tests). */
static napi_value js_fd_owned(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv, NULL)) return NULL;
  int32_t fd;
  if (!get_int32_arg(env, argv[0], &fd, "fd")) return NULL;
  return make_bool(env, fd >= 0 && fd_owned_is(fd));
}

/* fdLimit() -> [soft, hard] RLIMIT_NOFILE (Infinity when unlimited). From getrlimit, not /proc/self/limits:
 * the question comes up exactly when the fd table is full and opening a file would fail. */
static napi_value js_fd_limit(napi_env env, napi_callback_info info) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return throw_errno(env, errno, "getrlimit");
  napi_value arr;
  NAPI_OK_OR_THROW(env, napi_create_array_with_length(env, 2, &arr));
  napi_set_element(env, arr, 0, make_double(env, rl.rlim_cur == RLIM_INFINITY ? INFINITY : (double)rl.rlim_cur));
  napi_set_element(env, arr, 1, make_double(env, rl.rlim_max == RLIM_INFINITY ? INFINITY : (double)rl.rlim_max));
  return arr;
}

bool init_handle(napi_env env, napi_value exports) {
  static const export_entry entries[] = {
      {"handleFd", js_handle_fd},         {"handleOwnFd", js_handle_own_fd}, {"handleClose", js_handle_close},
      {"handleAdopt", js_handle_adopt},   {"handleDetach", js_handle_detach}, {"handlePin", js_handle_pin},
      {"handleUnpin", js_handle_unpin},   {"dupFd", js_dup_fd},               {"fdOwned", js_fd_owned},
      {"fdLimit", js_fd_limit},           {"batchTake", js_batch_take},       {"batchClose", js_batch_close},
      {"batchExpose", js_batch_expose},   {"handleRelease", js_handle_release},
  };
  if (napi_add_env_cleanup_hook(env, slots_teardown, env) != napi_ok) return false;
  return export_functions(env, exports, entries, sizeof entries / sizeof entries[0]);
}
