/**
 * Numbers and names the TypeScript side shares with the native addon. native/constants.h is the C side;
 * test/constants.test.mjs fails unless every `GROUP.KEY` here equals `MEMFD_GROUP_KEY` there and neither
 * side has one the other lacks. Literal types (`as const`) so that public types built on them stay exact.
 * Internal to the library.
 * @module
 */

/** `F_SEAL_*` (the public names are {@link Seal}'s). */
export const SEAL = { SEAL: 0x1, SHRINK: 0x2, GROW: 0x4, WRITE: 0x8, FUTURE_WRITE: 0x10, EXEC: 0x20 } as const;

/** `memfd_create` flags (include/uapi/linux/memfd.h). */
export const MFD = { CLOEXEC: 0x1, ALLOW_SEALING: 0x2, HUGETLB: 0x4, NOEXEC_SEAL: 0x8, EXEC: 0x10, HUGE_SHIFT: 26 } as const;

/** `fallocate` modes. */
export const FALLOC = { KEEP_SIZE: 0x1, PUNCH_HOLE: 0x2 } as const;

/** Access modes of open(2) flags. */
export const OPEN = { RDONLY: 0, RDWR: 2, ACCMODE: 3 } as const;

/** `statfs` f_type of tmpfs and hugetlbfs. */
export const FS_MAGIC = { TMPFS: 0x01021994, HUGETLBFS: 0x958458f6 } as const;

export const SOCK_TYPE = { STREAM: 1, DGRAM: 2, SEQPACKET: 5 } as const;
/** libuv poll events. */
export const POLL = { READABLE: 1, WRITABLE: 2 } as const;
export const SHUT = { WR: 1 } as const;
/** Which buffer `socketSetBufferSize` sizes. */
export const SOCK_BUFFER = { SEND: 0, RECEIVE: 1 } as const;
/** The kernel's `SCM_MAX_FD`: most fds in one message. */
export const SCM = { MAX_FD: 253 } as const;

/** Bits of the per-message flags `socketRecvBatch` returns. */
export const RECV = { FDS_TRUNCATED: 1, DATA_TRUNCATED: 2 } as const;

/** Option bits of `mmap`. */
export const MAP_OPT = { SHARED: 1, POPULATE: 4, FUTEX_TWIN: 8 } as const;

/** What the native futex waits answer. */
export const FUTEX_RESULT = { OK: 'ok', NOT_EQUAL: 'not-equal', TIMED_OUT: 'timed-out', UNMAPPED: 'unmapped' } as const;

/** Length of the Float64Array `fstat` fills. */
export const STAT = { FIELDS: 14 } as const;
