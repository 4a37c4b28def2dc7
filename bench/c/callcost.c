/* Call cost of the syscalls behind MemFile.create()+close(), getSeals(), addSeals(), truncate(), and the
 * O_TMPFILE alternative, in ns/op. Usage: callcost ITERATIONS. Prints one JSON object (one measurement
 * after a warmup of the same length); the harness runs it several times, interleaved with Node and Python. */
#include "common.h"

#ifndef O_TMPFILE
#define O_TMPFILE (020000000 | O_DIRECTORY)
#endif

static volatile int sink;

static double run_create_close(long n) {
  double t0 = now_s();
  for (long i = 0; i < n; i++) {
    int fd = memfd("bench", LIB_FLAGS);
    if (fd < 0) die("memfd_create");
    close(fd);
  }
  return (now_s() - t0) * 1e9 / (double)n;
}

static double run_tmpfile_close(long n) {
  double t0 = now_s();
  for (long i = 0; i < n; i++) {
    int fd = open("/dev/shm", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0) die("open O_TMPFILE");
    close(fd);
  }
  return (now_s() - t0) * 1e9 / (double)n;
}

static double run_get_seals(int fd, long n) {
  double t0 = now_s();
  for (long i = 0; i < n; i++) {
    int s = fcntl(fd, F_GET_SEALS);
    if (s < 0) die("F_GET_SEALS");
    sink = s;
  }
  return (now_s() - t0) * 1e9 / (double)n;
}

static double run_add_seals(int fd, long n) {
  double t0 = now_s();
  for (long i = 0; i < n; i++) {
    if (fcntl(fd, F_ADD_SEALS, F_SEAL_GROW) < 0) die("F_ADD_SEALS");
  }
  return (now_s() - t0) * 1e9 / (double)n;
}

/* Alternates 4096 and 0 bytes so that every call changes the size (as the Node and Python loops do). */
static double run_truncate(int fd, long n) {
  double t0 = now_s();
  for (long i = 0; i < n; i++) {
    if (ftruncate(fd, (i & 1) ? 0 : 4096) < 0) die("ftruncate");
  }
  return (now_s() - t0) * 1e9 / (double)n;
}

int main(int argc, char **argv) {
  long n = argc > 1 ? atol(argv[1]) : 200000;
  long nc = n / 4; /* create+close is ~10x slower than fcntl: fewer iterations, same wall time order */
  int fd = memfd("bench", LIB_FLAGS);
  int sfd = memfd("bench", LIB_FLAGS);
  if (fd < 0 || sfd < 0) die("memfd_create");
  /* warmup */
  run_create_close(nc / 4);
  run_tmpfile_close(nc / 4);
  run_get_seals(fd, n / 4);
  run_add_seals(sfd, n / 4);
  run_truncate(fd, n / 4);
  double cc = run_create_close(nc);
  double tc = run_tmpfile_close(nc);
  double gs = run_get_seals(fd, n);
  double as = run_add_seals(sfd, n);
  double tr = run_truncate(fd, n);
  printf("{\"createClose\":%.1f,\"tmpfileClose\":%.1f,\"getSeals\":%.1f,\"addSeals\":%.1f,\"truncate\":%.1f}\n", cc, tc, gs,
         as, tr);
  return 0;
}
