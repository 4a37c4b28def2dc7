/* Call cost of the syscalls behind MemFile.create()+close(), getSeals(), addSeals(), truncate(), and the
 * O_TMPFILE alternative, in ns/op. Usage: callcost ITERATIONS [REPS]. After a warmup, each operation is
 * timed REPS times (ITERATIONS/REPS calls each, operations interleaved) and the median rep is printed as
 * one JSON object; the harness runs this several times, interleaved with Node and Python. Taking the
 * median of short reps keeps a burst of load from another process out of the number. */
#include "common.h"

#ifndef O_TMPFILE
#define O_TMPFILE (020000000 | O_DIRECTORY)
#endif

static volatile int sink;

/* Process CPU time (all threads, user + system): unlike wall time it does not count waiting for a CPU
 * that another program is using, so it is the steadier number on a shared machine. */
static double cpu_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}
static double last_cpu; /* CPU ns/op of the last run_* call */
#define BEGIN double t0 = now_s(), c0 = cpu_s()
#define END(n) (last_cpu = (cpu_s() - c0) * 1e9 / (double)(n), (now_s() - t0) * 1e9 / (double)(n))

static double run_create_close(long n) {
  BEGIN;
  for (long i = 0; i < n; i++) {
    int fd = memfd("bench", LIB_FLAGS);
    if (fd < 0) die("memfd_create");
    close(fd);
  }
  return END(n);
}

static double run_tmpfile_close(long n) {
  BEGIN;
  for (long i = 0; i < n; i++) {
    int fd = open("/dev/shm", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0) die("open O_TMPFILE");
    close(fd);
  }
  return END(n);
}

static double run_get_seals(int fd, long n) {
  BEGIN;
  for (long i = 0; i < n; i++) {
    int s = fcntl(fd, F_GET_SEALS);
    if (s < 0) die("F_GET_SEALS");
    sink = s;
  }
  return END(n);
}

static double run_add_seals(int fd, long n) {
  BEGIN;
  for (long i = 0; i < n; i++) {
    if (fcntl(fd, F_ADD_SEALS, F_SEAL_GROW) < 0) die("F_ADD_SEALS");
  }
  return END(n);
}

/* Alternates 4096 and 0 bytes so that every call changes the size (as the Node and Python loops do). */
static double run_truncate(int fd, long n) {
  BEGIN;
  for (long i = 0; i < n; i++) {
    if (ftruncate(fd, (i & 1) ? 0 : 4096) < 0) die("ftruncate");
  }
  return END(n);
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}
static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

#define MAX_REPS 101
int main(int argc, char **argv) {
  long n = argc > 1 ? atol(argv[1]) : 200000;
  int reps = argc > 2 ? atoi(argv[2]) : 11;
  if (reps < 1 || reps > MAX_REPS) reps = 11;
  long per = n / reps, perc = per / 4; /* create+close is ~30x slower than fcntl: fewer calls */
  if (perc < 1) perc = 1;
  int fd = memfd("bench", LIB_FLAGS);
  int sfd = memfd("bench", LIB_FLAGS);
  if (fd < 0 || sfd < 0) die("memfd_create");
  /* warmup */
  run_create_close(n / 8);
  run_tmpfile_close(n / 8);
  run_get_seals(fd, n / 2);
  run_add_seals(sfd, n / 2);
  run_truncate(fd, n / 2);
  static double w[5][MAX_REPS], c[5][MAX_REPS];
  for (int r = 0; r < reps; r++) {
    w[0][r] = run_create_close(perc), c[0][r] = last_cpu;
    w[1][r] = run_tmpfile_close(perc), c[1][r] = last_cpu;
    w[2][r] = run_get_seals(fd, per), c[2][r] = last_cpu;
    w[3][r] = run_add_seals(sfd, per), c[3][r] = last_cpu;
    w[4][r] = run_truncate(fd, per), c[4][r] = last_cpu;
  }
  static const char *names[5] = {"createClose", "tmpfileClose", "getSeals", "addSeals", "truncate"};
  printf("{");
  for (int k = 0; k < 5; k++) printf("\"%s\":%.1f,", names[k], median(w[k], reps));
  printf("\"cpu\":{");
  for (int k = 0; k < 5; k++) printf("%s\"%s\":%.1f", k ? "," : "", names[k], median(c[k], reps));
  printf("}}\n");
  return 0;
}
