/* Shared helpers of the C reference programs: timing, the data pattern, memory accounting.
 * The pattern and the verification routine are the same as bench/node/pattern.mjs. */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef MFD_CLOEXEC
#define MFD_CLOEXEC 0x1U
#define MFD_ALLOW_SEALING 0x2U
#endif
#ifndef MFD_NOEXEC_SEAL
#define MFD_NOEXEC_SEAL 0x8U
#endif
#ifndef F_ADD_SEALS
#define F_ADD_SEALS 1033
#define F_GET_SEALS 1034
#define F_SEAL_SEAL 0x1
#define F_SEAL_SHRINK 0x2
#define F_SEAL_GROW 0x4
#define F_SEAL_WRITE 0x8
#endif
#ifndef F_SEAL_FUTURE_WRITE
#define F_SEAL_FUTURE_WRITE 0x10
#endif

/* The flags MemFile.create() uses by default, so both sides ask the kernel for the same thing. */
#define LIB_FLAGS (MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_NOEXEC_SEAL)

static inline double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static inline int memfd(const char *name, unsigned flags) { return (int)syscall(SYS_memfd_create, name, flags); }

static inline void die(const char *what) {
  fprintf(stderr, "%s: %s\n", what, strerror(errno));
  exit(2);
}

/* Reference block: PERIOD bytes, byte j = top byte of j * 0x9E3779B1. Data byte i = ref[i % PERIOD]. PERIOD is
 * odd and not a power of two, so a shifted or truncated copy does not match. Fill = memcpy of the block,
 * verify = memcmp against it: the same routine as Node's Buffer#set / Buffer.compare, so the hand-off
 * numbers measure the transport and the memory system rather than a compiler's loop. */
#define PATTERN_PERIOD (1048576 + 4099)
static uint8_t pattern_ref[PATTERN_PERIOD];
static inline void pattern_init(void) {
  for (uint32_t j = 0; j < PATTERN_PERIOD; j++) pattern_ref[j] = (uint8_t)((j * 0x9E3779B1u) >> 24);
}
static inline void pattern_fill(void *p, size_t bytes) {
  for (size_t off = 0; off < bytes; off += PATTERN_PERIOD) {
    size_t n = bytes - off < PATTERN_PERIOD ? bytes - off : PATTERN_PERIOD;
    memcpy((uint8_t *)p + off, pattern_ref, n);
  }
}
/* Returns the number of mismatching blocks (0 = every byte verified). */
static inline size_t pattern_verify(const void *p, size_t bytes) {
  size_t bad = 0;
  for (size_t off = 0; off < bytes; off += PATTERN_PERIOD) {
    size_t n = bytes - off < PATTERN_PERIOD ? bytes - off : PATTERN_PERIOD;
    bad += memcmp((const uint8_t *)p + off, pattern_ref, n) != 0;
  }
  return bad;
}

/* A field of /proc/self/smaps_rollup or /proc/self/status, in bytes (kB * 1024), or -1. */
static inline long long proc_kb_field(const char *file, const char *field) {
  FILE *f = fopen(file, "r");
  if (!f) return -1;
  char line[256];
  size_t len = strlen(field);
  long long v = -1;
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, field, len) == 0 && line[len] == ':') {
      v = atoll(line + len + 1) * 1024;
      break;
    }
  }
  fclose(f);
  return v;
}
static inline long long self_pss(void) { return proc_kb_field("/proc/self/smaps_rollup", "Pss"); }
static inline long long self_hwm(void) { return proc_kb_field("/proc/self/status", "VmHWM"); }

static inline size_t parse_size(const char *s) {
  char *end;
  double v = strtod(s, &end);
  switch (*end) {
    case 'k': case 'K': v *= 1024; break;
    case 'm': case 'M': v *= 1024 * 1024; break;
    case 'g': case 'G': v *= 1024.0 * 1024 * 1024; break;
  }
  return (size_t)v;
}
#endif
