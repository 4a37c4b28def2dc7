/* fd passing rate in C: messages per second over an AF_UNIX seqpacket socketpair in one process, each
 * message carrying 8 bytes and one fd (SCM_RIGHTS) of a memfd; the receiver closes every fd it gets.
 * Usage: fdpass MESSAGES WINDOW [peek|nofd]. WINDOW messages are sent, then WINDOW received (the Node side does the
 * same, so both measure throughput with the same amount of pipelining). 'nofd': data only (8 bytes, no fd).
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

static double run(int s0, int s1, int fd, long messages, long window) {
  double t0 = now_s();
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
  no_fd = argc > 3 && !strcmp(argv[3], "nofd");
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) die("socketpair");
  int fd = memfd("bench", LIB_FLAGS);
  if (fd < 0) die("memfd");
  run(sv[0], sv[1], fd, messages / 4 / window * window + window, window); /* warmup */
  double rate = run(sv[0], sv[1], fd, messages, window);
  printf("{\"perSecond\":%.0f}\n", rate);
  return 0;
}
