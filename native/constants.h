/* Numbers and names that C and TypeScript must agree on: this file is the C side, src/constants.ts the
 * TS side, and test/constants.test.mjs fails unless every MEMFD_<GROUP>_<KEY> here equals <GROUP>.<KEY>
 * there and neither side has one the other lacks. Kernel ABI values are also checked against the C
 * headers at compile time (where the build machine's headers know them). */
#ifndef MEMFD_CONSTANTS_H
#define MEMFD_CONSTANTS_H

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <uv.h>

/* File seals (F_SEAL_*): TS Seal. */
#define MEMFD_SEAL_SEAL 0x1
#define MEMFD_SEAL_SHRINK 0x2
#define MEMFD_SEAL_GROW 0x4
#define MEMFD_SEAL_WRITE 0x8
#define MEMFD_SEAL_FUTURE_WRITE 0x10
#define MEMFD_SEAL_EXEC 0x20

/* memfd_create flags (MFD_*), passed through from TS. */
#define MEMFD_MFD_CLOEXEC 0x1
#define MEMFD_MFD_ALLOW_SEALING 0x2
#define MEMFD_MFD_HUGETLB 0x4
#define MEMFD_MFD_NOEXEC_SEAL 0x8
#define MEMFD_MFD_EXEC 0x10
#define MEMFD_MFD_HUGE_SHIFT 26

/* fallocate modes, passed through from TS. */
#define MEMFD_FALLOC_KEEP_SIZE 0x1
#define MEMFD_FALLOC_PUNCH_HOLE 0x2

/* Access modes of open(2) flags, as fdFlags() reports them and reopen() takes them. */
#define MEMFD_OPEN_RDONLY 0
#define MEMFD_OPEN_RDWR 2
#define MEMFD_OPEN_ACCMODE 3

/* statfs f_type of the filesystems a memfd lives on (identify()). */
#define MEMFD_FS_MAGIC_TMPFS 0x01021994
#define MEMFD_FS_MAGIC_HUGETLBFS 0x958458f6

/* Socket types, poll events (libuv) and shutdown direction, passed through from TS. */
#define MEMFD_SOCK_TYPE_STREAM 1
#define MEMFD_SOCK_TYPE_DGRAM 2
#define MEMFD_SOCK_TYPE_SEQPACKET 5
#define MEMFD_POLL_READABLE 1
#define MEMFD_POLL_WRITABLE 2
#define MEMFD_SHUT_WR 1
/* Which buffer socketSetBufferSize() sizes: SO_SNDBUF or SO_RCVBUF (socket.c). */
#define MEMFD_SOCK_BUFFER_SEND 0
#define MEMFD_SOCK_BUFFER_RECEIVE 1
/* Most fds one message can carry: the kernel's SCM_MAX_FD (not exported to user space). */
#define MEMFD_SCM_MAX_FD 253

/* Bits of the flags socketRecv() returns (socket.c). */
#define MEMFD_RECV_FDS_TRUNCATED 1  /* MSG_CTRUNC: the control buffer was too small; arrived fds were closed */
#define MEMFD_RECV_DATA_TRUNCATED 2 /* MSG_TRUNC: the datagram was larger than the buffer */

/* Option bits of mmap() (mapping.c). */
#define MEMFD_MAP_OPT_SHARED 1     /* MAP_SHARED and writable; otherwise a copy-on-write mapping */
#define MEMFD_MAP_OPT_POPULATE 4   /* pre-fault every page */
#define MEMFD_MAP_OPT_FUTEX_TWIN 8 /* a read-only shared twin for futexes of a copy-on-write mapping */

/* Results of the futex waits (futex.c). */
#define MEMFD_FUTEX_RESULT_OK "ok"
#define MEMFD_FUTEX_RESULT_NOT_EQUAL "not-equal"
#define MEMFD_FUTEX_RESULT_TIMED_OUT "timed-out"
#define MEMFD_FUTEX_RESULT_UNMAPPED "unmapped"

/* Fields fstat() writes into the Float64Array it is given (memfd.c). */
#define MEMFD_STAT_FIELDS 14

#ifdef F_SEAL_SEAL
_Static_assert(MEMFD_SEAL_SEAL == F_SEAL_SEAL && MEMFD_SEAL_SHRINK == F_SEAL_SHRINK && MEMFD_SEAL_GROW == F_SEAL_GROW &&
                   MEMFD_SEAL_WRITE == F_SEAL_WRITE, "F_SEAL_*");
#endif
#ifdef F_SEAL_FUTURE_WRITE
_Static_assert(MEMFD_SEAL_FUTURE_WRITE == F_SEAL_FUTURE_WRITE, "F_SEAL_FUTURE_WRITE");
#endif
#ifdef F_SEAL_EXEC
_Static_assert(MEMFD_SEAL_EXEC == F_SEAL_EXEC, "F_SEAL_EXEC");
#endif
#ifdef MFD_HUGETLB
_Static_assert(MEMFD_MFD_CLOEXEC == MFD_CLOEXEC && MEMFD_MFD_ALLOW_SEALING == MFD_ALLOW_SEALING &&
                   MEMFD_MFD_HUGETLB == MFD_HUGETLB, "MFD_*");
#endif
#ifdef MFD_NOEXEC_SEAL
_Static_assert(MEMFD_MFD_NOEXEC_SEAL == MFD_NOEXEC_SEAL && MEMFD_MFD_EXEC == MFD_EXEC, "MFD_NOEXEC_SEAL, MFD_EXEC");
#endif
#ifdef MFD_HUGE_SHIFT
_Static_assert(MEMFD_MFD_HUGE_SHIFT == MFD_HUGE_SHIFT, "MFD_HUGE_SHIFT");
#endif
#ifdef FALLOC_FL_PUNCH_HOLE
_Static_assert(MEMFD_FALLOC_KEEP_SIZE == FALLOC_FL_KEEP_SIZE && MEMFD_FALLOC_PUNCH_HOLE == FALLOC_FL_PUNCH_HOLE,
               "FALLOC_FL_*");
#endif
/* The kernel's access mode is the low two bits (O_RDONLY, O_WRONLY, O_RDWR); musl's O_ACCMODE adds O_SEARCH. */
_Static_assert(MEMFD_OPEN_RDONLY == O_RDONLY && MEMFD_OPEN_RDWR == O_RDWR &&
                   MEMFD_OPEN_ACCMODE == (O_RDONLY | O_WRONLY | O_RDWR), "O_*");
_Static_assert(MEMFD_FS_MAGIC_TMPFS == TMPFS_MAGIC && MEMFD_FS_MAGIC_HUGETLBFS == HUGETLBFS_MAGIC, "*_MAGIC");
_Static_assert(MEMFD_SOCK_TYPE_STREAM == SOCK_STREAM && MEMFD_SOCK_TYPE_DGRAM == SOCK_DGRAM &&
                   MEMFD_SOCK_TYPE_SEQPACKET == SOCK_SEQPACKET, "SOCK_*");
_Static_assert(MEMFD_POLL_READABLE == UV_READABLE && MEMFD_POLL_WRITABLE == UV_WRITABLE, "UV_READABLE, UV_WRITABLE");
_Static_assert(MEMFD_SHUT_WR == SHUT_WR, "SHUT_WR");

#endif
