/* Filling and reading a memfd of SIZE bytes in C: the reference for the Node fill case.
 * Usage: fill SIZE OP, OP one of
 *   map-touch     memfd_create + ftruncate + mmap(shared, writable) + memset  (first-touch page faults)
 *   map-populate  the same with MAP_POPULATE (pages allocated by mmap, then memset)
 *   write         memfd_create + pwrite of a 1 MiB buffer until SIZE
 *   read-map      (file prepared untimed) mmap read-only + memcpy every 1 MiB chunk into a buffer
 *   read          (file prepared untimed) pread into a 1 MiB buffer until SIZE
 *   map-touch-huge  map-touch on a MFD_HUGETLB file (2 MiB pages; needs SIZE/2MiB reserved huge pages)
 * Prints {"seconds": S}. Teardown (munmap, close: freeing the pages) is not timed, in C as in Node. */
#include "common.h"

#define CHUNK (1u << 20)

/* The file to read back, written untimed with pwrite, as bench/node/fill.mjs does. */
static int prepared(size_t size, const uint8_t *buf) {
  int fd = memfd("bench", LIB_FLAGS);
  if (fd < 0) die("prepare");
  for (size_t off = 0; off < size; off += CHUNK) {
    size_t n = size - off < CHUNK ? size - off : CHUNK;
    if (pwrite(fd, buf, n, (off_t)off) != (ssize_t)n) die("pwrite");
  }
  return fd;
}

int main(int argc, char **argv) {
  if (argc < 3) { fprintf(stderr, "usage: fill SIZE OP\n"); return 2; }
  size_t size = parse_size(argv[1]);
  const char *op = argv[2];
  static uint8_t buf[CHUNK] __attribute__((aligned(4096)));
  memset(buf, 0x5a, sizeof buf);
  void *p = NULL;
  int fd = -1;
  double t0, t1;
  volatile uint8_t sink;
  if (!strcmp(op, "map-touch") || !strcmp(op, "map-populate") || !strcmp(op, "map-touch-huge")) {
    int populate = !strcmp(op, "map-populate");
    int huge = !strcmp(op, "map-touch-huge");
    t0 = now_s();
    fd = memfd("bench", LIB_FLAGS | (huge ? 0x4u /* MFD_HUGETLB */ : 0));
    if (fd < 0 || ftruncate(fd, (off_t)size) < 0) die("memfd");
    p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | (populate ? MAP_POPULATE : 0), fd, 0);
    if (p == MAP_FAILED) die("mmap");
    memset(p, 0x5a, size);
    t1 = now_s();
  } else if (!strcmp(op, "write")) {
    t0 = now_s();
    fd = memfd("bench", LIB_FLAGS);
    if (fd < 0) die("memfd");
    for (size_t off = 0; off < size; off += CHUNK) {
      size_t n = size - off < CHUNK ? size - off : CHUNK;
      if (pwrite(fd, buf, n, (off_t)off) != (ssize_t)n) die("pwrite");
    }
    t1 = now_s();
  } else if (!strcmp(op, "read-map")) {
    fd = prepared(size, buf);
    t0 = now_s();
    p = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) die("mmap");
    for (size_t off = 0; off < size; off += CHUNK) {
      size_t n = size - off < CHUNK ? size - off : CHUNK;
      memcpy(buf, (uint8_t *)p + off, n);
      __asm__ volatile("" ::"r"(buf) : "memory");
    }
    t1 = now_s();
  } else if (!strcmp(op, "read")) {
    fd = prepared(size, buf);
    t0 = now_s();
    for (size_t off = 0; off < size; off += CHUNK) {
      size_t n = size - off < CHUNK ? size - off : CHUNK;
      if (pread(fd, buf, n, (off_t)off) != (ssize_t)n) die("pread");
    }
    t1 = now_s();
  } else {
    fprintf(stderr, "unknown op %s\n", op);
    return 2;
  }
  sink = buf[CHUNK - 1];
  (void)sink;
  if (p) munmap(p, size);
  close(fd);
  printf("{\"seconds\":%.6f}\n", t1 - t0);
  return 0;
}
