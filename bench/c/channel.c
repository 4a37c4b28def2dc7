/* The limit for Channel: an SPSC ring in C over the same layout (docs/channel.md, version 1), between a
 * parent (end A, writer of ring 0) and a forked child (end B). Both sides spin (yielding every 1024
 * turns); no futex, no sleeping.
 * The reader copies every message out (memcpy into its own buffer), as Channel.tryReceive() must.
 *
 *   channel tp SIZE COUNT     one-way throughput A -> B: {"msgsPerSec", "bytesPerSec"}
 *   channel tp-zc SIZE COUNT  the same, the reader reading in place (it checks each message's last byte and
 *                             hands the space back, as Channel's tryReceiveView() + release() do): the limit
 *                             for Channel's zero-copy path, with the writer's memcpy the one copy
 *   channel rtt SIZE COUNT    ping-pong A -> B -> A: {"p50us", "p99us"}
 *   channel memcpy SIZE COUNT memcpy of SIZE bytes between two buffers (the copy limit): {"bytesPerSec"}
 *   channel memcpy-fresh SIZE COUNT  the same into freshly malloc'd buffers
 *   channel memcpy-ring SIZE COUNT   memcpy of SIZE bytes into a memfd mapping of the ring's size at the
 *                                    offsets where the ring's frames would go (one process): the copy with
 *                                    the same memory footprint as a transfer through the ring
 *
 * BENCH_CPUS=A,B in the environment (bench/channel.mjs --pin) runs end A on CPU A and end B on CPU B. */
#include "common.h"

#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/wait.h>

#define HEADER 4096u
#define PAD 0xffffffffu
typedef _Atomic uint32_t au32;

typedef struct ring {
  uint8_t *data;
  uint32_t cap, mask;
  au32 *tail, *head;
  uint32_t local;     /* our own index (tail for the writer, head for the reader) */
  uint32_t seen;      /* the peer's index as last read */
} ring;

static uint8_t *base;

static ring ring_of(unsigned dir, uint32_t cap, bool writer) {
  ring r = {base + HEADER + dir * cap, cap, cap - 1, (au32 *)(base + 256 + 128 * dir), (au32 *)(base + 256 + 128 * dir + 64), 0, 0};
  (void)writer;
  return r;
}

#include <sched.h>
/* Spin, yielding the CPU now and then: on a machine with more runnable processes than cores, a pure spin
 * burns its whole time slice while the peer it waits for is not even running. */
#define SPIN_UNTIL(cond, reload)              \
  do {                                        \
    unsigned spins__ = 0;                     \
    while (!(cond)) {                         \
      reload;                                 \
      if (++spins__ % 1024 == 0) sched_yield(); \
    }                                         \
  } while (0)

static inline uint32_t frame(uint32_t len) { return (len + 4 + 7) & ~7u; }

static inline void send_msg(ring *r, const uint8_t *msg, uint32_t len) {
  uint32_t need = frame(len);
  uint32_t idx = r->local & r->mask;
  if (need > r->cap - idx) {
    uint32_t pad = r->cap - idx;
    SPIN_UNTIL(r->cap - (r->local - r->seen) >= pad, r->seen = atomic_load_explicit(r->head, memory_order_acquire));
    *(uint32_t *)(r->data + idx) = PAD;
    r->local += pad;
    atomic_store_explicit(r->tail, r->local, memory_order_release);
    idx = 0;
  }
  SPIN_UNTIL(r->cap - (r->local - r->seen) >= need, r->seen = atomic_load_explicit(r->head, memory_order_acquire));
  *(uint32_t *)(r->data + idx) = len;
  memcpy(r->data + idx + 4, msg, len);
  r->local += need;
  atomic_store_explicit(r->tail, r->local, memory_order_release);
}

/* out == NULL: read in place (only the last byte is looked at), the zero-copy reader. */
static inline uint32_t recv_msg(ring *r, uint8_t *out) {
  for (;;) {
    SPIN_UNTIL(r->local != r->seen, r->seen = atomic_load_explicit(r->tail, memory_order_acquire));
    uint32_t idx = r->local & r->mask;
    uint32_t len = *(uint32_t *)(r->data + idx);
    if (len == PAD) {
      r->local += r->cap - idx;
      atomic_store_explicit(r->head, r->local, memory_order_release);
      continue;
    }
    if (out != NULL) memcpy(out, r->data + idx + 4, len);
    else if (len > 0 && r->data[idx + 4 + len - 1] != 7) die("bad byte");
    r->local += frame(len);
    atomic_store_explicit(r->head, r->local, memory_order_release);
    return len;
  }
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* Pins this process to the first (end A) or second (end B) CPU of BENCH_CPUS, when it is set. */
static void pin_end(int end) {
  const char *cpus = getenv("BENCH_CPUS");
  int cpu[2];
  if (cpus == NULL) return;
  if (sscanf(cpus, "%d,%d", &cpu[0], &cpu[1]) != 2) die("BENCH_CPUS is not A,B");
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu[end], &set);
  if (sched_setaffinity(0, sizeof set, &set) != 0) die("sched_setaffinity");
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: channel tp|tp-zc|rtt|memcpy|memcpy-fresh|memcpy-ring SIZE COUNT\n");
    return 2;
  }
  const char *mode = argv[1];
  pin_end(0);
  uint32_t size = (uint32_t)strtoul(argv[2], NULL, 0);
  long count = strtol(argv[3], NULL, 0);
  uint8_t *msg = malloc(size + 1), *out = malloc(size + 1);
  memset(msg, 7, size + 1);

  if (strcmp(mode, "memcpy") == 0 || strcmp(mode, "memcpy-fresh") == 0) {
    bool fresh = strcmp(mode, "memcpy-fresh") == 0;
    double t0 = now_s();
    for (long i = 0; i < count; i++) {
      uint8_t *dst = fresh ? malloc(size) : out;
      memcpy(dst, msg, size);
      __asm__ volatile("" ::"r"(dst) : "memory");
      if (fresh) free(dst);
    }
    double dt = now_s() - t0;
    printf("{\"bytesPerSec\":%.0f}\n", (double)size * count / dt);
    return 0;
  }

  uint32_t cap = 1u << 16;
  while (cap < 4 * (size + 8)) cap <<= 1;

  if (strcmp(mode, "memcpy-ring") == 0) {
    int rfd = memfd("bench-memcpy-ring", LIB_FLAGS);
    if (rfd < 0) die("memfd_create");
    if (ftruncate(rfd, cap) != 0) die("ftruncate");
    uint8_t *dst = mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_SHARED, rfd, 0);
    if (dst == MAP_FAILED) die("mmap");
    memset(dst, 0, cap); /* the pages exist, as in a ring that has been used once */
    uint32_t at = 0;
    double t0 = now_s();
    for (long i = 0; i < count; i++) {
      if (frame(size) > cap - at) at = 0; /* frames never wrap */
      memcpy(dst + at + 4, msg, size);
      __asm__ volatile("" ::"r"(dst) : "memory");
      at += frame(size);
    }
    double dt = now_s() - t0;
    printf("{\"bytesPerSec\":%.0f}\n", (double)size * count / dt);
    return 0;
  }

  int fd = memfd("bench-channel", LIB_FLAGS);
  if (fd < 0) die("memfd_create");
  if (ftruncate(fd, HEADER + 2 * (off_t)cap) != 0) die("ftruncate");
  /* Faulted in before the clock starts, as the Node side does with { populate: true }. */
  base = mmap(NULL, HEADER + 2 * (size_t)cap, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
  if (base == MAP_FAILED) die("mmap");
  *(uint32_t *)(base + 4) = 1;
  *(uint32_t *)(base + 8) = HEADER;
  *(uint32_t *)(base + 12) = cap;
  *(uint32_t *)base = 0x4344464d;
  bool rtt = strcmp(mode, "rtt") == 0, in_place = strcmp(mode, "tp-zc") == 0;
  if (!rtt && !in_place && strcmp(mode, "tp") != 0) {
    fprintf(stderr, "unknown mode %s\n", mode);
    return 2;
  }

  pid_t pid = fork();
  if (pid < 0) die("fork");
  if (pid == 0) { /* end B: reads ring 0, answers on ring 1 */
    pin_end(1);
    /* The child's page tables start empty (fork does not copy those of a shared mapping): fault them in. */
    if (madvise(base, HEADER + 2 * (size_t)cap, MADV_POPULATE_WRITE) != 0) die("madvise");
    ring in = ring_of(0, cap, false), back = ring_of(1, cap, true);
    for (long i = 0; i < count; i++) {
      uint32_t n = recv_msg(&in, in_place ? NULL : out);
      if (rtt) send_msg(&back, out, n);
    }
    if (!rtt) send_msg(&back, msg, 1); /* done */
    _exit(0);
  }
  ring tx = ring_of(0, cap, true), rx = ring_of(1, cap, false);
  if (rtt) {
    double *lat = malloc(sizeof(double) * (size_t)count);
    for (long i = 0; i < count; i++) {
      double t0 = now_s();
      send_msg(&tx, msg, size);
      recv_msg(&rx, out);
      lat[i] = now_s() - t0;
    }
    qsort(lat, (size_t)count, sizeof(double), cmp_double);
    printf("{\"p50us\":%.3f,\"p99us\":%.3f}\n", lat[count / 2] * 1e6, lat[(long)(count * 0.99)] * 1e6);
  } else {
    double t0 = now_s();
    for (long i = 0; i < count; i++) send_msg(&tx, msg, size);
    recv_msg(&rx, out);
    double dt = now_s() - t0;
    printf("{\"msgsPerSec\":%.0f,\"bytesPerSec\":%.0f}\n", count / dt, (double)size * count / dt);
  }
  waitpid(pid, NULL, 0);
  return 0;
}
