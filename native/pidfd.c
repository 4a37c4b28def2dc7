/* Another process's memfd, inspected through pidfd_open(2) + pidfd_getfd(2) (Linux 5.6), for the `memfd`
 * command.
 *
 * Lifetime rules: the pidfd and the copied fd exist only inside one call. Both are closed before the call
 * returns, on every path, and JS never sees either number. The copy shares the target's open file description
 * (its offset and status flags), so nothing here reads, writes or seeks through it: only fcntl(F_GET_SEALS),
 * fstat and fstatfs, which the target cannot observe. If the fd number was reused for another file since the
 * caller read its /proc link, the copy is of that file: TS compares device and inode and drops the answer,
 * and closing a mere copy releases nothing the target holds (POSIX record locks belong to the process).
 *
 * Permission is the kernel's: pidfd_getfd needs PTRACE_MODE_ATTACH_REALCREDS over the target (same user and
 * not set-id, or CAP_SYS_PTRACE; Yama's ptrace_scope can forbid more). Refusals (EPERM, ESRCH, EBADF, ENOSYS
 * on kernels before 5.6) reach JS as errno through the error factory; TS decides what the row shows. */
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef F_GET_SEALS
#define F_GET_SEALS 1034
#endif
/* Same numbers on every architecture (the unified syscall table starts at 424): old headers lack them. */
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif

/* peerFdInfo(pid, fd) -> [sealsOrNegErrno, dev, ino, mode, size, blocks, uid, gid, fstatfsMagicOrNegErrno]
 * Seals are per inode, so the copy answers for every fd and mapping of the file. A failing F_GET_SEALS is
 * not an error here (secretmem and non-shmem files answer EINVAL): it comes back as -errno. */
static napi_value js_peer_fd_info(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv, NULL)) return NULL;
  int32_t pid, target_fd;
  if (!get_int32_arg(env, argv[0], &pid, "pid") || !get_int32_arg(env, argv[1], &target_fd, "fd")) return NULL;
  if (pid <= 0) return throw_range_error(env, "ERR_OUT_OF_RANGE", "pid must be positive");
  if (target_fd < 0) return throw_range_error(env, "ERR_OUT_OF_RANGE", "fd must be non-negative");

  int pidfd = (int)syscall(SYS_pidfd_open, (pid_t)pid, 0);
  if (pidfd < 0) return throw_errno(env, errno, "pidfd_open");
  int copy = (int)syscall(SYS_pidfd_getfd, pidfd, target_fd, 0);
  int err = errno;
  close(pidfd);
  if (copy < 0) return throw_errno(env, err, "pidfd_getfd");

  int seals = fcntl(copy, F_GET_SEALS);
  double seals_or_errno = seals >= 0 ? (double)seals : -(double)errno;
  struct stat st;
  int stat_rc = sys_fstat(copy, &st);
  int stat_err = errno;
  struct statfs sfs;
  double magic = fstatfs(copy, &sfs) == 0 ? (double)(unsigned long)sfs.f_type : -(double)errno;
  close(copy);
  if (stat_rc < 0) return throw_errno(env, stat_err, "fstat");

  double v[9] = {seals_or_errno,       (double)st.st_dev,  (double)st.st_ino,
                 (double)st.st_mode,   (double)st.st_size, (double)st.st_blocks,
                 (double)st.st_uid,    (double)st.st_gid,  magic};
  napi_value result;
  NAPI_OK_OR_THROW(env, napi_create_array_with_length(env, 9, &result));
  for (uint32_t i = 0; i < 9; i++) NAPI_OK_OR_THROW(env, napi_set_element(env, result, i, make_double(env, v[i])));
  return result;
}

bool init_pidfd(napi_env env, napi_value exports) {
  static const export_entry entries[] = {{"peerFdInfo", js_peer_fd_info}};
  return export_functions(env, exports, entries, sizeof entries / sizeof entries[0]);
}
