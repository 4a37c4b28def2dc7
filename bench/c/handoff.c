/* The limit for the hand-off case: a C parent hands SIZE bytes to a C child through a sealed memfd whose fd
 * travels over a seqpacket socketpair; the child maps it read-only and verifies every byte with the same
 * routine as the Node children (common.h). Usage: handoff SIZE.
 * Timed like the Node methods: from "child ready" to "child reports the data verified":
 *   parent: memfd_create, ftruncate, then either (map) mmap(MAP_POPULATE), fill the pattern, munmap,
 *           or (write) pwrite the pattern block until SIZE; then
 *           F_ADD_SEALS(SEAL|SHRINK|GROW|WRITE), sendmsg(SCM_RIGHTS)
 *   child:  recvmsg, mmap(PROT_READ), verify, read its own PSS, reply.
 * Prints {"seconds", "bad", "pssParent", "pssChild", "hwmParent", "hwmChild", "pssParentIdle", "pssChildIdle"}. */
#include "common.h"

#include <sys/socket.h>
#include <sys/wait.h>

struct result {
  long long bad, pss, hwm, pss_idle;
};

static void send_fd(int sock, int fd, const void *data, size_t len) {
  char control[CMSG_SPACE(sizeof(int))];
  memset(control, 0, sizeof control);
  struct iovec iov = {(void *)data, len};
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control};
  struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), &fd, sizeof fd);
  if (sendmsg(sock, &msg, MSG_NOSIGNAL) < 0) die("sendmsg");
}

static int recv_fd(int sock, void *data, size_t len) {
  char control[CMSG_SPACE(sizeof(int))];
  struct iovec iov = {data, len};
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control};
  if (recvmsg(sock, &msg, MSG_CMSG_CLOEXEC) < 0) die("recvmsg");
  struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
  if (!c || c->cmsg_type != SCM_RIGHTS) { fprintf(stderr, "no fd received\n"); exit(2); }
  int fd;
  memcpy(&fd, CMSG_DATA(c), sizeof fd);
  return fd;
}

static void child(int sock) {
  struct result r = {0};
  r.pss_idle = self_pss();
  char ready = 'r';
  if (write(sock, &ready, 1) != 1) die("write");
  uint64_t size;
  int fd = recv_fd(sock, &size, sizeof size);
  void *p = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) die("child mmap");
  close(fd);
  r.bad = (long long)pattern_verify(p, size);
  r.pss = self_pss();
  r.hwm = self_hwm();
  if (write(sock, &r, sizeof r) != sizeof r) die("write");
  char bye;
  if (read(sock, &bye, 1) < 0) die("read");
  munmap(p, size);
  _exit(0);
}

int main(int argc, char **argv) {
  if (argc < 2) { fprintf(stderr, "usage: handoff SIZE\n"); return 2; }
  uint64_t size = parse_size(argv[1]);
  int by_write = argc > 2 && !strcmp(argv[2], "write");
  pattern_init();
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) die("socketpair");
  long long pss_parent_idle = self_pss();
  pid_t pid = fork();
  if (pid < 0) die("fork");
  if (pid == 0) {
    close(sv[0]);
    child(sv[1]);
  }
  close(sv[1]);
  int sock = sv[0];
  char ready;
  if (read(sock, &ready, 1) != 1) die("read ready");

  double t0 = now_s();
  int fd = memfd("handoff", LIB_FLAGS);
  if (fd < 0 || ftruncate(fd, (off_t)size) < 0) die("memfd");
  if (by_write) {
    /* The pattern block is written over and over with pwrite: no page-table work in this process. */
    for (uint64_t off = 0; off < size; off += PATTERN_PERIOD) {
      size_t n = size - off < PATTERN_PERIOD ? (size_t)(size - off) : PATTERN_PERIOD;
      if (pwrite(fd, pattern_ref, n, (off_t)off) != (ssize_t)n) die("pwrite");
    }
  } else {
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
    if (p == MAP_FAILED) die("mmap");
    pattern_fill(p, size);
    munmap(p, size);
  }
  if (fcntl(fd, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) < 0) die("F_ADD_SEALS");
  send_fd(sock, fd, &size, sizeof size);
  close(fd);
  struct result r;
  if (read(sock, &r, sizeof r) != sizeof r) die("read result");
  double t1 = now_s();

  long long pss_parent = self_pss(), hwm_parent = self_hwm();
  char bye = 'q';
  if (write(sock, &bye, 1) != 1) die("write");
  int status;
  waitpid(pid, &status, 0);
  printf("{\"seconds\":%.6f,\"bad\":%lld,\"pssParent\":%lld,\"pssChild\":%lld,\"hwmParent\":%lld,\"hwmChild\":%lld,"
         "\"pssParentIdle\":%lld,\"pssChildIdle\":%lld}\n",
         t1 - t0, r.bad, pss_parent, r.pss, hwm_parent, r.hwm, pss_parent_idle, r.pss_idle);
  return r.bad ? 1 : 0;
}
