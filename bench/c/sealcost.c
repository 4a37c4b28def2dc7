/* What adding a write seal costs, by file size. Usage: sealcost SIZE.
 * Two memfds of SIZE bytes are filled through a writable shared mapping that is then unmapped (the usual
 * "write, then freeze" sequence); then F_ADD_SEALS(F_SEAL_WRITE) is timed on one and
 * F_ADD_SEALS(F_SEAL_FUTURE_WRITE) on the other. Prints {"write": s, "futureWrite": s}. */
#include "common.h"

static int filled(size_t size) {
  int fd = memfd("seal", LIB_FLAGS);
  if (fd < 0 || ftruncate(fd, (off_t)size) < 0) die("memfd");
  void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
  if (p == MAP_FAILED) die("mmap");
  memset(p, 0x5a, size);
  munmap(p, size);
  return fd;
}

static double seal(int fd, int bits) {
  double t0 = now_s();
  if (fcntl(fd, F_ADD_SEALS, bits) < 0) die("F_ADD_SEALS");
  return now_s() - t0;
}

int main(int argc, char **argv) {
  size_t size = parse_size(argc > 1 ? argv[1] : "64M");
  int a = filled(size);
  double w = seal(a, F_SEAL_WRITE);
  close(a);
  int b = filled(size);
  double f = seal(b, F_SEAL_FUTURE_WRITE);
  close(b);
  printf("{\"write\":%.9f,\"futureWrite\":%.9f}\n", w, f);
  return 0;
}
