/* A memory mapping shared between JS and native code.
 *
 * Lifetime rules (each one prevents a crash seen in other addons):
 *  - Two JS owners hold the record: the external ArrayBuffer over the pages (its finalizer) and a
 *    type-tagged external kept by the TS Mapping. The record is freed when both are gone, in whichever
 *    order V8 collects them, because futex waits and unmap() identify a mapping by the external.
 *  - Only two events release the pages: an explicit unmap (which detaches the ArrayBuffer first, so no
 *    view can reach them any more) and the ArrayBuffer's finalizer (nothing can reach them either).
 *    Releasing replaces the range by a quarantined anonymous placeholder instead of munmapping it, since
 *    native code (Node's thread pool) may still hold the address (mapping.c). The
 *    external's finalizer never munmaps: a view may outlive the Mapping object. `mapped` guarantees the
 *    range is unmapped exactly once; a second munmap could hit memory the kernel has since reused.
 *  - Pending async futex waits on the mapping are cancelled, and have left the futex syscall, before
 *    the range is unmapped: afterwards nothing could wake them (see futex.c). */
#ifndef MEMFD_MAPPING_H
#define MEMFD_MAPPING_H

#include "common.h"

struct futex_waiter;
struct map_env;

typedef struct map_record {
  uint8_t *base;       /* what mmap returned (granule-aligned) */
  size_t map_len;      /* what was mapped, a multiple of the granule */
  uint8_t *data;       /* base + (user offset - aligned offset): what the ArrayBuffer shows */
  size_t length;       /* the ArrayBuffer's byte length */
  uint8_t *futex_base; /* shared read-only twin of a copy-on-write mapping, or NULL (futex.c uses it) */
  bool mapped;         /* false once munmap has run */
  bool unmap_requested; /* JS called unmap(): a later release by the finalizer is not a leak */
  unsigned refs;       /* JS owners (buffer, external) plus pending futex waiters; main thread only */
  unsigned windows;    /* live channel windows over the pages (channel.c); main thread only */
  bool release_deferred; /* released while windows lived: the pages go when the last window does */
  struct futex_waiter *waiters; /* pending async futex waits on this mapping (futex.c) */
  struct map_env *env; /* the env that made it (holds a reference): quarantine bookkeeping, see mapping.c */
} map_record;

/* The record behind a Mapping's external, or NULL with ERR_INVALID_ARG_TYPE thrown. */
map_record *mapping_unwrap(napi_env env, napi_value v);
void mapping_ref(map_record *r);
void mapping_unref(map_record *r);
/* channel.c: a window (an external ArrayBuffer over part of the pages) holds the record like mapping_ref,
 * and the pages too: a window can outlive the channel's detach of it (moved with
 * ArrayBuffer.prototype.transfer() first), so they stay mapped while any window lives. */
void mapping_window_ref(map_record *r);
void mapping_window_unref(map_record *r);
/* addon.c: the env's instance data lets go of its mapping state. */
void mapping_env_unref(struct map_env *e);

/* futex.c: cancels every pending wait on r and returns once none of them is inside the syscall. */
void futex_cancel_waiters(map_record *r);

#endif
