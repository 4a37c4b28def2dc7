/* memfd_create, memfd_secret, seals, size, identity checks. */
#include "constants.h"
#include "handle.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef F_ADD_SEALS
#define F_ADD_SEALS 1033
#define F_GET_SEALS 1034
#endif
#ifndef SYS_memfd_secret
#define SYS_memfd_secret 447
#endif

/* memfdCreate(name, flags) -> handle. Flags are passed through untouched (policy lives in TS), so
 * a kernel that does not know a bit answers EINVAL and TS can fall back. */
static napi_value js_memfd_create(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv, NULL)) return NULL;
  uint32_t flags;
  if (!get_uint32_arg(env, argv[1], &flags, "flags")) return NULL;
  /* The kernel takes at most 249 bytes (MFD_NAME_MAX_LEN): a name that fills this buffer is too long
   * whatever it holds after, so no malloc per call. */
  char name[256];
  size_t len = 0;
  if (napi_get_value_string_utf8(env, argv[0], name, sizeof name, &len) != napi_ok) {
    return throw_type_error(env, "ERR_INVALID_ARG_TYPE", "The \"name\" argument must be of type string");
  }
  if (len >= sizeof name - 1) return throw_errno(env, EINVAL, "memfd_create");
  /* Call the syscall directly: the glibc wrapper needs 2.27 and adds nothing. */
  int fd = (int)syscall(SYS_memfd_create, name, flags);
  if (fd < 0) return throw_errno(env, errno, "memfd_create");
  napi_value h = fd_handle_wrap(env, fd, FD_KIND_FILE, (flags & MFD_CLOEXEC) != 0, NULL);
  if (h == NULL) close(fd);
  return h;
}

/* memfdSecret(flags) -> handle */
static napi_value js_memfd_secret(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv, NULL)) return NULL;
  uint32_t flags;
  if (!get_uint32_arg(env, argv[0], &flags, "flags")) return NULL;
  int fd = (int)syscall(SYS_memfd_secret, flags);
  if (fd < 0) return throw_errno(env, errno, "memfd_secret");
  napi_value h = fd_handle_wrap(env, fd, FD_KIND_FILE, (flags & O_CLOEXEC) != 0, NULL);
  if (h == NULL) close(fd);
  return h;
}

static napi_value js_get_seals(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  fd_handle *h;
  int fd = fd_handle_args(env, info, 1, argv, &h, "fcntl");
  if (fd < 0) return NULL;
  int seals = fcntl(fd, F_GET_SEALS);
  if (seals < 0) return throw_errno(env, errno, "fcntl");
  return make_int32(env, seals);
}

/* getSealsFd(fd) -> seals: the hot path of MemFile#getSeals. It takes the private fd number instead of the
 * handle: TS only passes the fd of a MemFile it has just checked to be open, on the JS thread, within this
 * synchronous call, so the number is still ours (close() and the GC safety net run on this same thread,
 * and a MemFile cannot be shared with another thread). It skipped ~40 ns of type-tag check and external
 * unwrap when handles were externals; with number handles the unwrap costs ~10 ns, so the other calls
 * take the handle. */
static napi_value js_get_seals_fd(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t fd;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 ||
      napi_get_value_int32(env, argv[0], &fd) != napi_ok)
    return throw_type_error(env, "ERR_INVALID_ARG_TYPE", "Expected an fd number");
  int seals = fcntl(fd, F_GET_SEALS);
  if (seals < 0) return throw_errno(env, errno, "fcntl");
  return make_int32(env, seals);
}

static napi_value js_add_seals(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  fd_handle *h;
  int fd = fd_handle_args(env, info, 2, argv, &h, "fcntl");
  if (fd < 0) return NULL;
  uint32_t seals;
  if (!get_uint32_arg(env, argv[1], &seals, "seals")) return NULL;
  if (fcntl(fd, F_ADD_SEALS, (int)seals) < 0) return throw_errno(env, errno, "fcntl");
  return make_undefined(env);
}

static napi_value js_truncate(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  fd_handle *h;
  int fd = fd_handle_args(env, info, 2, argv, &h, "ftruncate");
  if (fd < 0) return NULL;
  int64_t size;
  if (!get_size_arg(env, argv[1], &size, "size")) return NULL;
  int rc;
  do rc = ftruncate(fd, (off_t)size); while (rc < 0 && errno == EINTR);
  if (rc < 0) return throw_errno(env, errno, "ftruncate");
  return make_undefined(env);
}

/* allocate(handle, offset, length, mode): fallocate; mode carries FALLOC_FL_* bits from TS. */
static napi_value js_allocate(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  fd_handle *h;
  int fd = fd_handle_args(env, info, 4, argv, &h, "fallocate");
  if (fd < 0) return NULL;
  int64_t offset, length;
  uint32_t mode;
  if (!get_size_arg(env, argv[1], &offset, "offset") || !get_size_arg(env, argv[2], &length, "length") ||
      !get_uint32_arg(env, argv[3], &mode, "mode"))
    return NULL;
  int rc;
  do rc = fallocate(fd, (int)mode, (off_t)offset, (off_t)length); while (rc < 0 && errno == EINTR);
  if (rc < 0) return throw_errno(env, errno, "fallocate");
  return make_undefined(env);
}

/* size(handle) -> st_size: the hot path behind MemFile#size, so no object is built. */
static napi_value js_size(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  fd_handle *h;
  int fd = fd_handle_args(env, info, 1, argv, &h, "fstat");
  if (fd < 0) return NULL;
  struct stat st;
  if (sys_fstat(fd, &st) < 0) return throw_errno(env, errno, "fstat");
  return make_double(env, (double)st.st_size);
}

static double ts_ms(struct timespec t) { return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6; }

/* fstat(handle, Float64Array(MEMFD_STAT_FIELDS)) fills
 * [dev, ino, mode, nlink, uid, gid, rdev, size, blksize, blocks, atimeMs, mtimeMs, ctimeMs, birthtimeMs] */
static napi_value js_fstat(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  fd_handle *h;
  int fd = fd_handle_args(env, info, 2, argv, &h, "fstat");
  if (fd < 0) return NULL;
  uint8_t *bytes;
  size_t len;
  if (!get_bytes_arg(env, argv[1], &bytes, &len, "out")) return NULL;
  if (len < MEMFD_STAT_FIELDS * sizeof(double)) return throw_range_error(env, "ERR_OUT_OF_RANGE", "stat buffer too small");
  struct stat st;
  if (sys_fstat(fd, &st) < 0) return throw_errno(env, errno, "fstat");
  double v[MEMFD_STAT_FIELDS] = {(double)st.st_dev,     (double)st.st_ino,    (double)st.st_mode,   (double)st.st_nlink,
                  (double)st.st_uid,     (double)st.st_gid,    (double)st.st_rdev,   (double)st.st_size,
                  (double)st.st_blksize, (double)st.st_blocks, ts_ms(st.st_atim),    ts_ms(st.st_mtim),
                  ts_ms(st.st_ctim),     ts_ms(st.st_ctim)};
  memcpy(bytes, v, sizeof v);
  return make_undefined(env);
}

static napi_value js_fchmod(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  fd_handle *h;
  int fd = fd_handle_args(env, info, 2, argv, &h, "fchmod");
  if (fd < 0) return NULL;
  uint32_t mode;
  if (!get_uint32_arg(env, argv[1], &mode, "mode")) return NULL;
  if (fchmod(fd, (mode_t)mode) < 0) return throw_errno(env, errno, "fchmod");
  return make_undefined(env);
}

/* identify(fd) -> [fstatfsMagicOrNegErrno, linkTarget|null, sealsOrNegErrno, st_mode|-errno, accessMode]
 * Works on raw fd numbers (for isMemFd/fromFd) without taking ownership. A successful F_GET_SEALS alone
 * proves nothing: every tmpfs (/dev/shm) and hugetlbfs file answers it, so TS combines all three. */
static napi_value js_identify(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv, NULL)) return NULL;
  int32_t fd;
  if (!get_int32_arg(env, argv[0], &fd, "fd")) return NULL;
  napi_value result, v;
  NAPI_OK_OR_THROW(env, napi_create_array_with_length(env, 5, &result));

  struct statfs sfs;
  double magic = fstatfs(fd, &sfs) == 0 ? (double)(unsigned long)sfs.f_type : -(double)errno;
  napi_set_element(env, result, 0, make_double(env, magic));

  char path[64], link[PATH_MAX];
  snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(path, link, sizeof link - 1);
  if (n >= 0) {
    napi_create_string_utf8(env, link, (size_t)n, &v);
  } else {
    napi_get_null(env, &v);
  }
  napi_set_element(env, result, 1, v);

  int seals = fcntl(fd, F_GET_SEALS);
  napi_set_element(env, result, 2, make_int32(env, seals >= 0 ? seals : -errno));

  struct stat st;
  napi_set_element(env, result, 3, make_double(env, sys_fstat(fd, &st) == 0 ? (double)st.st_mode : -(double)errno));

  int fl = fcntl(fd, F_GETFL);
  napi_set_element(env, result, 4, make_int32(env, fl >= 0 ? (fl & O_ACCMODE) : -errno));
  return result;
}

/* reopen(handle, flags) -> handle: open("/proc/self/fd/N") makes a new open file description of the same
 * inode, which is how a read-only handle of a read-write memfd is obtained. */
static napi_value js_reopen(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  fd_handle *h;
  int fd = fd_handle_args(env, info, 2, argv, &h, "open");
  if (fd < 0) return NULL;
  uint32_t flags;
  if (!get_uint32_arg(env, argv[1], &flags, "flags")) return NULL;
  char path[64];
  snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  int nfd;
  do nfd = open(path, (int)flags | O_CLOEXEC); while (nfd < 0 && errno == EINTR);
  if (nfd < 0) return throw_errno(env, errno, "open");
  napi_value r = fd_handle_wrap(env, nfd, FD_KIND_FILE, 1, NULL);
  if (r == NULL) close(nfd);
  return r;
}

/* dup(handle, cloexec) -> handle */
static napi_value js_dup(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  fd_handle *h;
  int fd = fd_handle_args(env, info, 2, argv, &h, "fcntl");
  if (fd < 0) return NULL;
  bool cloexec = true;
  napi_get_value_bool(env, argv[1], &cloexec);
  int nfd = fcntl(fd, cloexec ? F_DUPFD_CLOEXEC : F_DUPFD, 0);
  if (nfd < 0) return throw_errno(env, errno, "fcntl");
  napi_value r = fd_handle_wrap(env, nfd, FD_KIND_FILE, cloexec, NULL);
  if (r == NULL) close(nfd);
  return r;
}

/* fdFlags(fd) -> [F_GETFD flags, F_GETFL flags] (or throws): used to report cloexec and access mode. */
static napi_value js_fd_flags(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv, NULL)) return NULL;
  int32_t fd;
  if (!get_int32_arg(env, argv[0], &fd, "fd")) return NULL;
  int fdfl = fcntl(fd, F_GETFD);
  if (fdfl < 0) return throw_errno(env, errno, "fcntl");
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0) return throw_errno(env, errno, "fcntl");
  napi_value r;
  NAPI_OK_OR_THROW(env, napi_create_array_with_length(env, 2, &r));
  napi_set_element(env, r, 0, make_int32(env, fdfl));
  napi_set_element(env, r, 1, make_int32(env, fl));
  return r;
}

static napi_value js_page_size(napi_env env, napi_callback_info info) {
  return make_double(env, (double)sysconf(_SC_PAGESIZE));
}

bool init_memfd(napi_env env, napi_value exports) {
  static const export_entry entries[] = {
      {"memfdCreate", js_memfd_create}, {"memfdSecret", js_memfd_secret}, {"getSeals", js_get_seals},
      {"getSealsFd", js_get_seals_fd},
      {"addSeals", js_add_seals},       {"truncate", js_truncate},        {"allocate", js_allocate},
      {"size", js_size},                {"fstat", js_fstat},              {"fchmod", js_fchmod},
      {"identify", js_identify},        {"reopen", js_reopen},            {"dup", js_dup},
      {"fdFlags", js_fd_flags},         {"pageSize", js_page_size},
  };
  return export_functions(env, exports, entries, sizeof entries / sizeof entries[0]);
}
