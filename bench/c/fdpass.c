/* fd passing rate in C: messages per second over an AF_UNIX seqpacket socketpair in one process, each
 * message carrying 8 bytes and one fd (SCM_RIGHTS) of a memfd; the receiver closes every fd it gets.
 * Usage: fdpass MESSAGES WINDOW [peek|nofd|mmsg]. WINDOW messages are sent, then WINDOW received (the Node side
 * does the same, so both measure throughput with the same amount of pipelining). 'nofd': data only (8 bytes, no
 * fd). 'mmsg': data only, the WINDOW sends in one sendmmsg and the WINDOW receives in one recvmmsg. That is the
 * kernel's own cost per message with every syscall batched: a floor, not a loop a library could run, because
 * recvmmsg needs the size of every message before it reads them (this receiver knows they are 8 bytes; a
 * receiver of arbitrary messages would truncate, and so lose, any message bigger than its slot).
 * Prints {"perSecond": R}. */
#include "common.h"

#include <sys/socket.h>

static int no_fd; /* "nofd" mode: 8 bytes of data only */

static void send_one(int sock, int fd, uint64_t seq) {
  if (no_fd) {
    while (send(sock, &seq, sizeof seq, MSG_NOSIGNAL) < 0) {
      if (errno != EINTR) die("send");
    }
    return;
  }
  char control[CMSG_SPACE(sizeof(int))];
  memset(control, 0, sizeof control);
  struct iovec iov = {&seq, sizeof seq};
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control};
  struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), &fd, sizeof fd);
  while (sendmsg(sock, &msg, MSG_NOSIGNAL) < 0) {
    if (errno != EINTR) die("sendmsg");
  }
}

static int peek_first; /* "peek" mode: size the message with recv(MSG_PEEK|MSG_TRUNC) first, as the library does */

static void recv_one(int sock) {
  if (peek_first) {
    while (recv(sock, NULL, 0, MSG_PEEK | MSG_TRUNC | MSG_DONTWAIT) < 0) {
      if (errno != EINTR) die("recv peek");
    }
  }
  /* Room for the most fds a message may carry, as a careful receiver (and the library) must allow. */
  char control[CMSG_SPACE(sizeof(int) * 253)];
  uint64_t seq;
  struct iovec iov = {&seq, sizeof seq};
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control};
  while (recvmsg(sock, &msg, MSG_CMSG_CLOEXEC) < 0) {
    if (errno != EINTR) die("recvmsg");
  }
  if (msg.msg_flags & MSG_CTRUNC) { fprintf(stderr, "MSG_CTRUNC\n"); exit(2); }
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
      size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < n; i++) {
        int fd;
        memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
        close(fd);
      }
    }
  }
}

static int batched; /* "mmsg" mode */

enum { MMSG_MAX = 1024, MMSG_SLOT = 4096 };

static void send_recv_batched(int s0, int s1, long window, uint64_t seq) {
  static struct mmsghdr out[MMSG_MAX], in[MMSG_MAX];
  static struct iovec out_iov[MMSG_MAX], in_iov[MMSG_MAX];
  static uint64_t seqs[MMSG_MAX];
  static char slots[MMSG_MAX][MMSG_SLOT];
  for (long i = 0; i < window; i++) {
    seqs[i] = seq + (uint64_t)i;
    out_iov[i] = (struct iovec){&seqs[i], sizeof seqs[i]};
    out[i] = (struct mmsghdr){.msg_hdr = {.msg_iov = &out_iov[i], .msg_iovlen = 1}};
    in_iov[i] = (struct iovec){slots[i], MMSG_SLOT};
    in[i] = (struct mmsghdr){.msg_hdr = {.msg_iov = &in_iov[i], .msg_iovlen = 1}};
  }
  for (long sent = 0; sent < window;) {
    int n = sendmmsg(s0, out + sent, (unsigned)(window - sent), MSG_NOSIGNAL);
    if (n < 0 && errno != EINTR) die("sendmmsg");
    if (n > 0) sent += n;
  }
  for (long got = 0; got < window;) {
    int n = recvmmsg(s1, in + got, (unsigned)(window - got), 0, NULL);
    if (n < 0 && errno != EINTR) die("recvmmsg");
    if (n > 0) got += n;
  }
}

static double run(int s0, int s1, int fd, long messages, long window) {
  double t0 = now_s();
  if (batched) {
    for (long done = 0; done < messages; done += window) send_recv_batched(s0, s1, window, (uint64_t)done);
    return (double)messages / (now_s() - t0);
  }
  for (long done = 0; done < messages; done += window) {
    for (long i = 0; i < window; i++) send_one(s0, fd, (uint64_t)(done + i));
    for (long i = 0; i < window; i++) recv_one(s1);
  }
  return (double)messages / (now_s() - t0);
}

int main(int argc, char **argv) {
  long messages = argc > 1 ? atol(argv[1]) : 200000;
  long window = argc > 2 ? atol(argv[2]) : 32;
  peek_first = argc > 3 && !strcmp(argv[3], "peek");
  batched = argc > 3 && !strcmp(argv[3], "mmsg");
  no_fd = batched || (argc > 3 && !strcmp(argv[3], "nofd"));
  if (batched && (window < 1 || window > MMSG_MAX)) {
    fprintf(stderr, "mmsg: WINDOW must be 1..%d\n", MMSG_MAX);
    return 2;
  }
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) die("socketpair");
  int fd = memfd("bench", LIB_FLAGS);
  if (fd < 0) die("memfd");
  run(sv[0], sv[1], fd, messages / 4 / window * window + window, window); /* warmup */
  double rate = run(sv[0], sv[1], fd, messages, window);
  printf("{\"perSecond\":%.0f}\n", rate);
  return 0;
}
