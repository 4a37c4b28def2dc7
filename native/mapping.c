/* mmap of an owned fd into an external ArrayBuffer; msync, madvise, mlock; explicit unmap.
 * Lifetime rules are in mapping.h. */
#include "mapping.h"

#include "constants.h"
#include "handle.h"

#include <errno.h>
#include <stdatomic.h>
#include <uv.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

/* Advice values the build headers may lack, with the generic (x86, arm, ...) numbers: a kernel that
 * does not know one answers EINVAL, which is reported as such. */
#ifndef MADV_FREE
#define MADV_FREE 8
#endif
#ifndef MADV_WIPEONFORK
#define MADV_WIPEONFORK 18
#define MADV_KEEPONFORK 19
#endif
#ifndef MADV_COLD
#define MADV_COLD 20
#define MADV_PAGEOUT 21
#endif
#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#define MADV_POPULATE_WRITE 23
#endif
#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif

static const napi_type_tag MAPPING_TAG = {0x6d656d66646d6170ULL, 0x3c5a0e9d71b24f18ULL};

/* The weak reference to the ArrayBuffer lets unmap() find the one buffer to detach without trusting a
 * buffer passed in from JS: detaching the wrong one and unmapping would leave live views over
 * unmapped memory. */
typedef struct map_owner {
  map_record rec;
  napi_ref buffer_ref;
} map_owner;

/* ---- Placeholders and their quarantine ----
 *
 * Detaching the ArrayBuffer stops JS, not native code that already took the raw pointer: Node's own
 * thread-pool work (crypto.randomFill, zlib, fs.read into the view, ...) keeps reading and writing the
 * range after unmap() returns, and no finalizer proves that it has finished (Node 20 runs the backing
 * store's deleter on the next immediate after a detach, while randomFill is still writing). munmap would
 * turn those late accesses into SIGSEGV. So releasing pages replaces the range in one step, with
 * mmap(MAP_FIXED), by private anonymous zero pages: the file's pages and the mapping's reference to the
 * file are gone at once (no SIGBUS, seals and memory accounting see the file unmapped), and late writers
 * land in throwaway memory, late readers see zeros. No hole ever opens in which another mmap could land.
 * MAP_NORESERVE: an untouched placeholder costs no memory and no commit charge (except under
 * vm.overcommit_memory=2, which ignores the flag; the byte limit is smaller there).
 *
 * The placeholders are released through a bounded FIFO quarantine, process-wide behind a mutex since
 * Workers unmap too: the oldest is munmapped once more than QUARANTINE_ENTRIES are held or their sizes
 * add up to more than the byte limit. An env that is torn down (Worker terminated, main thread exiting)
 * munmaps its own entries: Node lets that env's thread-pool requests finish before it runs cleanup hooks,
 * so nothing of that env still holds a pointer. At process.exit() nothing is released (the kernel does
 * it), so a pool thread still writing at exit never faults. */
enum { QUARANTINE_ENTRIES = 256 };
#define QUARANTINE_BYTES ((size_t)16 << 30)        /* address space only: untouched placeholders are free */
#define QUARANTINE_BYTES_STRICT ((size_t)256 << 20) /* vm.overcommit_memory=2 charges placeholders */

typedef struct q_entry {
  void *addr;
  size_t len;
  uint64_t env_id;
} q_entry;

static uv_once_t q_once = UV_ONCE_INIT;
static uv_mutex_t q_lock;
static q_entry q_ring[QUARANTINE_ENTRIES];
static size_t q_head, q_count, q_bytes, q_limit = QUARANTINE_BYTES;
static atomic_uint_fast64_t next_env_id = 1;

static void quarantine_init(void) {
  if (uv_mutex_init(&q_lock) != 0) abort();
  int fd = open("/proc/sys/vm/overcommit_memory", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    char c = 0;
    if (read(fd, &c, 1) == 1 && c == '2') q_limit = QUARANTINE_BYTES_STRICT;
    close(fd);
  }
}

/* Caller holds q_lock. */
static void quarantine_pop_oldest(void) {
  q_entry *e = &q_ring[q_head];
  munmap(e->addr, e->len);
  q_bytes -= e->len;
  q_head = (q_head + 1) % QUARANTINE_ENTRIES;
  q_count--;
}

/* Replaces [addr, addr + len) by a placeholder and quarantines it; false when the kernel refused the
 * placeholder (the caller then munmaps). */
static bool quarantine_replace(void *addr, size_t len, uint64_t env_id) {
  if (mmap(addr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0) ==
      MAP_FAILED)
    return false;
  uv_once(&q_once, quarantine_init);
  uv_mutex_lock(&q_lock);
  while (q_count > 0 && (q_count >= QUARANTINE_ENTRIES || q_bytes + len > q_limit)) quarantine_pop_oldest();
  q_ring[(q_head + q_count) % QUARANTINE_ENTRIES] = (q_entry){addr, len, env_id};
  q_count++;
  q_bytes += len;
  uv_mutex_unlock(&q_lock);
  return true;
}

/* munmaps the quarantined placeholders of one env, keeping the order of the others. */
static void quarantine_release_env(uint64_t env_id) {
  uv_once(&q_once, quarantine_init);
  uv_mutex_lock(&q_lock);
  size_t kept = 0, n = q_count;
  for (size_t i = 0; i < n; i++) {
    q_entry e = q_ring[(q_head + i) % QUARANTINE_ENTRIES];
    if (e.env_id == env_id) {
      munmap(e.addr, e.len);
      q_bytes -= e.len;
      q_count--;
    } else {
      q_ring[(q_head + kept++) % QUARANTINE_ENTRIES] = e;
    }
  }
  uv_mutex_unlock(&q_lock);
}

/* Per-env state shared by the env's mappings: whether the env's cleanup hook has run (afterwards no
 * thread-pool work of the env is left, and a finalizer may munmap directly). Main thread only. */
typedef struct map_env {
  uint64_t id;
  bool torn_down;
  unsigned refs; /* the cleanup hook, the env's instance data, one per record */
} map_env;

void mapping_env_unref(map_env *e) {
  if (--e->refs == 0) free(e);
}

static void map_env_cleanup(void *arg) {
  map_env *e = arg;
  e->torn_down = true;
  quarantine_release_env(e->id);
  mapping_env_unref(e);
}

/* `exposed`: the range was visible through an ArrayBuffer, so native code may still hold its address:
 * leave a quarantined placeholder (see above) unless the env is gone. */
static void free_range(map_record *r, bool exposed) {
  /* munmap only fails for bad arguments, which would be a bug here; the range is gone either way as far
   * as we are concerned, and retrying could unmap a reused range. */
  if (!exposed || r->env == NULL || r->env->torn_down || !quarantine_replace(r->base, r->map_len, r->env->id))
    munmap(r->base, r->map_len);
}

/* Releases the pages exactly once. Pending async futex waits are cancelled while the range is still
 * mapped (futex.c); the futex twin is never exposed to JS or to native code outside this addon, so it is
 * munmapped at once. */
static void release_pages(map_record *r, bool exposed) {
  if (!r->mapped) return;
  futex_cancel_waiters(r);
  if (r->futex_base != NULL) munmap(r->futex_base, r->map_len);
  r->futex_base = NULL;
  r->mapped = false;
  /* A channel window may still show the pages (one moved away with transfer() before the channel detached
   * it): munmap now would leave it over unmapped or reused memory. The last window's finalizer frees them. */
  if (r->windows > 0) {
    r->release_deferred = true;
    return;
  }
  free_range(r, exposed);
}

static void do_munmap(map_record *r) { release_pages(r, false); }

void mapping_ref(map_record *r) { r->refs++; }

void mapping_unref(map_record *r) {
  if (--r->refs > 0) return;
  release_pages(r, true); /* unreachable while a buffer exists (it holds a ref), kept for safety */
  if (r->env != NULL) mapping_env_unref(r->env);
  free((map_owner *)r); /* rec is the first member of the allocation */
}

void mapping_window_ref(map_record *r) {
  r->refs++;
  r->windows++;
}

void mapping_window_unref(map_record *r) {
  if (--r->windows == 0 && r->release_deferred) {
    r->release_deferred = false;
    free_range(r, true);
  }
  mapping_unref(r);
}

/* The ArrayBuffer is gone (collected, or its env is being torn down): nothing in JS can reach the pages. */
static void finalize_buffer(napi_env env, void *data, void *hint) {
  map_owner *o = hint;
  /* Node's async operations keep their buffer reachable until they complete, so a collected buffer means
   * no pool work uses the pages; the placeholder costs little and also covers native code that kept the
   * pointer without the buffer (an ArrayBuffer moved with transfer(), third-party addons). */
  if (o->rec.mapped && !o->rec.unmap_requested) notice_post(env, NOTICE_GC_CLOSED, NOTICE_KIND_MAPPING, -1);
  release_pages(&o->rec, true);
  if (o->buffer_ref != NULL) {
    napi_delete_reference(env, o->buffer_ref);
    o->buffer_ref = NULL;
  }
  mapping_unref(&o->rec);
}

static void finalize_external(napi_env env, void *data, void *hint) {
  map_owner *o = data;
  mapping_unref(&o->rec);
}

map_record *mapping_unwrap(napi_env env, napi_value v) {
  return unwrap_tagged(env, v, &MAPPING_TAG, "a memfd native mapping");
}

static napi_value throw_unmapped(napi_env env) {
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (!pending) napi_throw_error(env, "ERR_MEMFD_UNMAPPED", "The mapping has been unmapped");
  return NULL;
}


/* Pages are always mapped PROT_READ|PROT_WRITE. A PROT_READ page under an ArrayBuffer would let one JS
 * store kill the process with SIGSEGV, and V8 has no read-only ArrayBuffer to stop it. So a mapping that
 * must not change the file is MAP_PRIVATE: a store only copies that page into this process. Pages not
 * written here stay the file's own page-cache pages, so they still show other processes' changes and
 * key futexes by inode, like a shared mapping.
 *
 * Except that the futex syscall itself breaks copy-on-write: get_futex_key() first asks for the page
 * with FOLL_WRITE, which succeeds on a private writable mapping, so the first wait silently turns the
 * page into a private copy (no more updates from the file, and a process-private futex key). A
 * read-only mapping that may serve futexes therefore gets a twin: the same range mapped MAP_SHARED and
 * PROT_READ, never exposed to JS, where futex.c waits and wakes. FOLL_WRITE fails there, the kernel falls
 * back to the page-cache page, and the key is (inode, offset) as in every other process. */

/* mmap(handle, offset, length, granule, options) -> [external, ArrayBuffer]
 * options: MEMFD_MAP_OPT_SHARED (writes reach the file) | MEMFD_MAP_OPT_POPULATE | MEMFD_MAP_OPT_FUTEX_TWIN (see above).
 * granule: the page size the kernel aligns this file to (base pages, or huge pages for hugetlbfs, where
 * munmap of a length that is not a multiple of the huge page size fails). The offset may be unaligned:
 * we map from the granule below it and point the ArrayBuffer at the requested byte. */
static napi_value js_mmap(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  fd_handle *h;
  int fd = fd_handle_args(env, info, 5, argv, &h, "mmap");
  if (fd < 0) return NULL;
  int64_t offset, length, granule;
  uint32_t opts;
  if (!get_size_arg(env, argv[1], &offset, "offset") || !get_size_arg(env, argv[2], &length, "length") ||
      !get_size_arg(env, argv[3], &granule, "granule") || !get_uint32_arg(env, argv[4], &opts, "options"))
    return NULL;
  long page = sysconf(_SC_PAGESIZE);
  if (granule < page || (granule & (granule - 1)) != 0)
    return throw_range_error(env, "ERR_OUT_OF_RANGE", "granule must be a power of two >= the page size");
  /* mmap cannot map 0 bytes (EINVAL), and an ArrayBuffer has at most 2^53 - 1 bytes. */
  if (length == 0) return throw_range_error(env, "ERR_OUT_OF_RANGE", "A mapping must be at least 1 byte long");
  int64_t aligned = offset & ~(granule - 1);
  uint64_t delta = (uint64_t)(offset - aligned);
  if ((uint64_t)length > (uint64_t)SIZE_MAX - delta - (uint64_t)granule)
    return throw_range_error(env, "ERR_OUT_OF_RANGE", "length is too large for this address space");
  size_t map_len = (size_t)((delta + (uint64_t)length + (uint64_t)granule - 1) & ~((uint64_t)granule - 1));

  bool shared = (opts & MEMFD_MAP_OPT_SHARED) != 0, populate = (opts & MEMFD_MAP_OPT_POPULATE) != 0;
  /* MAP_POPULATE on a private writable mapping faults every page for writing, which copies the whole
   * file into private memory: pre-fault copy-on-write mappings for reading instead. */
  int flags = (shared ? MAP_SHARED : MAP_PRIVATE) | (populate && shared ? MAP_POPULATE : 0);
  void *base = mmap(NULL, map_len, PROT_READ | PROT_WRITE, flags, fd, (off_t)aligned);
  if (base == MAP_FAILED) return throw_errno(env, errno, "mmap");
  void *twin = NULL;
  if (!shared && (opts & MEMFD_MAP_OPT_FUTEX_TWIN)) {
    /* Through a read-only open of the same file: a MAP_SHARED mapping of an O_RDWR fd keeps VM_MAYWRITE
     * even with PROT_READ, and the kernel would then refuse F_SEAL_WRITE with EBUSY while it exists. */
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    int rfd;
    do rfd = open(path, O_RDONLY | O_CLOEXEC); while (rfd < 0 && errno == EINTR);
    twin = mmap(NULL, map_len, PROT_READ, MAP_SHARED, rfd >= 0 ? rfd : fd, (off_t)aligned);
    int err = errno;
    if (rfd >= 0) close(rfd); /* the mapping holds the file, not the fd */
    if (twin == MAP_FAILED) {
      munmap(base, map_len);
      return throw_errno(env, err, "mmap");
    }
  }
  if (populate && !shared && madvise(base, map_len, MADV_POPULATE_READ) != 0) {
    /* Before Linux 5.14 (EINVAL): read-ahead is the best remaining hint. Pre-faulting is an
     * optimisation, so other failures are not worth failing the mapping for. */
    madvise(base, map_len, MADV_WILLNEED);
  }

  map_owner *o = calloc(1, sizeof *o);
  if (o == NULL) {
    munmap(base, map_len);
    if (twin != NULL) munmap(twin, map_len);
    return throw_errno(env, ENOMEM, "malloc");
  }
  map_record *r = &o->rec;
  r->base = base;
  r->map_len = map_len;
  r->data = (uint8_t *)base + delta;
  r->length = (size_t)length;
  r->futex_base = twin;
  r->mapped = true;
  addon_data *d = addon_get_data(env);
  r->env = d != NULL ? d->mapping_env : NULL;
  if (r->env != NULL) r->env->refs++;
  /* One reference for the buffer's finalizer, one that this function holds and hands to the external. */
  r->refs = 2;

  napi_value buffer, external, result;
  napi_status st = napi_create_external_arraybuffer(env, r->data, r->length, finalize_buffer, o, &buffer);
  if (st != napi_ok) {
    /* Whether the finalizer ran depends on where it failed: Node 20 calls it synchronously when the
     * length exceeds its Buffer limit (4 GiB), before returning the error. Unmapping is idempotent and
     * the reference count frees the record exactly once either way; if the finalizer neither ran nor
     * ever will, the small record leaks rather than risk a double free. */
    do_munmap(r);
    if (st == napi_no_external_buffers_allowed) mapping_unref(r); /* refused up front: no finalizer */
    mapping_unref(r);
    if (st == napi_no_external_buffers_allowed) {
      bool pending = false;
      napi_is_exception_pending(env, &pending);
      if (pending) { napi_value ignored; napi_get_and_clear_last_exception(env, &ignored); }
      napi_throw_error(env, "ERR_MEMFD_EXTERNAL_BUFFERS_UNSUPPORTED",
                       "This runtime does not allow external ArrayBuffers (V8 sandbox, as in Electron), so memory "
                       "mappings cannot be exposed to JavaScript; use readSync/writeSync instead");
      return NULL;
    }
    return throw_napi_failure(env, st, "napi_create_external_arraybuffer");
  }
  /* From here the buffer's finalizer owns one reference and will munmap if we bail out. */
  if (napi_create_reference(env, buffer, 0, &o->buffer_ref) != napi_ok) o->buffer_ref = NULL;
  if (napi_create_external(env, o, finalize_external, NULL, &external) != napi_ok) {
    napi_detach_arraybuffer(env, buffer);
    do_munmap(r);
    mapping_unref(r); /* the external's share: it was never created */
    return throw_napi_failure(env, napi_generic_failure, "napi_create_external");
  }
  if (napi_type_tag_object(env, external, &MAPPING_TAG) != napi_ok ||
      napi_create_array_with_length(env, 2, &result) != napi_ok ||
      napi_set_element(env, result, 0, external) != napi_ok || napi_set_element(env, result, 1, buffer) != napi_ok) {
    napi_detach_arraybuffer(env, buffer);
    do_munmap(r);
    return throw_napi_failure(env, napi_generic_failure, "mmap result");
  }
  return result;
}

/* unmap(external) -> 1 when this call unmapped the pages, 2 when they stay mapped until the buffer's
 * finalizer (see below), 0 when the mapping was already released. */
static napi_value js_unmap(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv, NULL)) return NULL;
  map_record *r = mapping_unwrap(env, argv[0]);
  if (r == NULL) return NULL;
  if (!r->mapped) return make_int32(env, 0);
  r->unmap_requested = true;
  map_owner *o = (map_owner *)r;
  napi_value buffer = NULL;
  bool detached = true;
  if (o->buffer_ref != NULL && napi_get_reference_value(env, o->buffer_ref, &buffer) == napi_ok && buffer != NULL &&
      napi_is_detached_arraybuffer(env, buffer, &detached) == napi_ok && !detached) {
    /* Detach first: afterwards every view has length 0 and no JS can touch the pages we release. If the
     * buffer cannot be detached, keep the memory mapped rather than leave views over unmapped pages. */
    napi_status st = napi_detach_arraybuffer(env, buffer);
    if (st != napi_ok) return throw_napi_failure(env, st, "napi_detach_arraybuffer");
    release_pages(r, true);
    return make_int32(env, 1);
  }
  /* Our buffer is already detached (or gone) but its backing store has not been freed: on Node 22+
   * ArrayBuffer.prototype.transfer() moves the pages into a new ArrayBuffer that we cannot reach, and
   * munmap now would leave it over unmapped memory (SIGSEGV on the next access). Only the backing store's
   * deleter (finalize_buffer) proves that no JS can touch the pages: leave the munmap to it. The waits
   * are cancelled now, since the Mapping is gone as far as its owner is concerned. */
  futex_cancel_waiters(r);
  return make_int32(env, 2);
}

static bool get_range(napi_env env, map_record *r, napi_value voff, napi_value vlen, uint8_t **start, size_t *len) {
  int64_t off, n;
  if (!get_size_arg(env, voff, &off, "offset") || !get_size_arg(env, vlen, &n, "length")) return false;
  if ((uint64_t)off > r->length || (uint64_t)n > r->length - (uint64_t)off) {
    throw_range_error(env, "ERR_OUT_OF_RANGE", "offset + length is beyond the end of the mapping");
    return false;
  }
  /* The kernel wants page-aligned starts; widen the range to whole pages of this mapping. */
  long page = sysconf(_SC_PAGESIZE);
  uintptr_t a = (uintptr_t)(r->data + off) & ~((uintptr_t)page - 1);
  uintptr_t e = (uintptr_t)(r->data + off + n);
  if (a < (uintptr_t)r->base) a = (uintptr_t)r->base;
  *start = (uint8_t *)a;
  *len = e - a;
  return true;
}

/* msync(external, flags, offset, length) */
static napi_value js_msync(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  if (!get_args(env, info, 4, argv, NULL)) return NULL;
  map_record *r = mapping_unwrap(env, argv[0]);
  if (r == NULL) return NULL;
  int32_t flags;
  if (!get_int32_arg(env, argv[1], &flags, "flags")) return NULL;
  uint8_t *start;
  size_t len;
  if (!get_range(env, r, argv[2], argv[3], &start, &len)) return NULL;
  if (!r->mapped) return throw_unmapped(env);
  if (msync(start, len, flags) != 0) return throw_errno(env, errno, "msync");
  return make_undefined(env);
}

/* madvise(external, advice, offset, length) */
static napi_value js_madvise(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  if (!get_args(env, info, 4, argv, NULL)) return NULL;
  map_record *r = mapping_unwrap(env, argv[0]);
  if (r == NULL) return NULL;
  int32_t advice;
  if (!get_int32_arg(env, argv[1], &advice, "advice")) return NULL;
  uint8_t *start;
  size_t len;
  if (!get_range(env, r, argv[2], argv[3], &start, &len)) return NULL;
  if (!r->mapped) return throw_unmapped(env);
  int rc;
  /* MADV_POPULATE_* report EINTR when a signal arrives mid-way; the work done so far is kept. */
  do rc = madvise(start, len, advice);
  while (rc != 0 && errno == EINTR && (advice == MADV_POPULATE_READ || advice == MADV_POPULATE_WRITE));
  if (rc != 0) return throw_errno(env, errno, "madvise");
  return make_undefined(env);
}

/* mlock(external, lock, offset, length) */
static napi_value js_mlock(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  if (!get_args(env, info, 4, argv, NULL)) return NULL;
  map_record *r = mapping_unwrap(env, argv[0]);
  if (r == NULL) return NULL;
  bool lock = true;
  napi_get_value_bool(env, argv[1], &lock);
  uint8_t *start;
  size_t len;
  if (!get_range(env, r, argv[2], argv[3], &start, &len)) return NULL;
  if (!r->mapped) return throw_unmapped(env);
  /* mlock faults a private writable range in for writing, i.e. copies every page and cuts a read-only
   * (copy-on-write) mapping off from the file. Lock its shared twin instead: the same page-cache pages. */
  if (r->futex_base != NULL) start = r->futex_base + (start - r->base);
  if ((lock ? mlock(start, len) : munlock(start, len)) != 0) return throw_errno(env, errno, lock ? "mlock" : "munlock");
  return make_undefined(env);
}

/* mappingInfo(external) -> [mapped, address as a number] (diagnostics and tests: /proc/self/maps lookups) */
static napi_value js_mapping_info(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv, NULL)) return NULL;
  map_record *r = mapping_unwrap(env, argv[0]);
  if (r == NULL) return NULL;
  napi_value result;
  NAPI_OK_OR_THROW(env, napi_create_array_with_length(env, 3, &result));
  napi_set_element(env, result, 0, make_bool(env, r->mapped));
  napi_set_element(env, result, 1, make_double(env, (double)(uintptr_t)r->base));
  napi_set_element(env, result, 2, make_double(env, (double)r->map_len));
  return result;
}

static bool set_number(napi_env env, napi_value obj, const char *name, double v) {
  return napi_set_named_property(env, obj, name, make_double(env, v)) == napi_ok;
}

/* Kernel constants from the C headers, so that TS never hard-codes an arch-dependent number. */
static napi_value build_constants(napi_env env) {
  napi_value c, adv;
  if (napi_create_object(env, &c) != napi_ok || napi_create_object(env, &adv) != napi_ok) return NULL;
  static const struct { const char *name; int value; } advices[] = {
      {"normal", MADV_NORMAL},         {"random", MADV_RANDOM},
      {"sequential", MADV_SEQUENTIAL}, {"willneed", MADV_WILLNEED},
      {"dontneed", MADV_DONTNEED},     {"free", MADV_FREE},
      {"remove", MADV_REMOVE},         {"dontfork", MADV_DONTFORK},
      {"dofork", MADV_DOFORK},         {"mergeable", MADV_MERGEABLE},
      {"unmergeable", MADV_UNMERGEABLE}, {"hugepage", MADV_HUGEPAGE},
      {"nohugepage", MADV_NOHUGEPAGE}, {"dontdump", MADV_DONTDUMP},
      {"dodump", MADV_DODUMP},         {"wipeonfork", MADV_WIPEONFORK},
      {"keeponfork", MADV_KEEPONFORK}, {"cold", MADV_COLD},
      {"pageout", MADV_PAGEOUT},       {"populate-read", MADV_POPULATE_READ},
      {"populate-write", MADV_POPULATE_WRITE}, {"collapse", MADV_COLLAPSE},
  };
  for (size_t i = 0; i < sizeof advices / sizeof advices[0]; i++)
    if (!set_number(env, adv, advices[i].name, advices[i].value)) return NULL;
  if (napi_set_named_property(env, c, "madvise", adv) != napi_ok) return NULL;
  if (!set_number(env, c, "MS_ASYNC", MS_ASYNC) || !set_number(env, c, "MS_SYNC", MS_SYNC) ||
      !set_number(env, c, "MS_INVALIDATE", MS_INVALIDATE) || !set_number(env, c, "O_CLOEXEC", O_CLOEXEC) ||
      !set_number(env, c, "pageSize", (double)sysconf(_SC_PAGESIZE)))
    return NULL;
  return c;
}

/* mappingQuarantine() -> [placeholders held, bytes] (diagnostics and tests) */
static napi_value js_mapping_quarantine(napi_env env, napi_callback_info info) {
  uv_once(&q_once, quarantine_init);
  uv_mutex_lock(&q_lock);
  double count = (double)q_count, bytes = (double)q_bytes;
  uv_mutex_unlock(&q_lock);
  napi_value result;
  NAPI_OK_OR_THROW(env, napi_create_array_with_length(env, 2, &result));
  napi_set_element(env, result, 0, make_double(env, count));
  napi_set_element(env, result, 1, make_double(env, bytes));
  return result;
}

bool init_mapping(napi_env env, napi_value exports) {
  map_env *me = calloc(1, sizeof *me);
  if (me == NULL) return false;
  me->id = atomic_fetch_add(&next_env_id, 1);
  me->refs = 1; /* the cleanup hook's */
  if (napi_add_env_cleanup_hook(env, map_env_cleanup, me) != napi_ok) {
    free(me);
    return false;
  }
  me->refs++; /* the instance data's */
  addon_data *d = addon_get_data(env);
  if (d != NULL) d->mapping_env = me;
  else me->refs--;
  static const export_entry entries[] = {
      {"mmap", js_mmap},     {"unmap", js_unmap}, {"msync", js_msync},
      {"madvise", js_madvise}, {"mlock", js_mlock}, {"mappingInfo", js_mapping_info},
      {"mappingQuarantine", js_mapping_quarantine},
  };
  if (!export_functions(env, exports, entries, sizeof entries / sizeof entries[0])) return false;
  napi_value c = build_constants(env);
  return c != NULL && napi_set_named_property(env, exports, "mappingConstants", c) == napi_ok;
}
