/* fd passing rate in C: messages per second over an AF_UNIX seqpacket socketpair in one process, each
 * message carrying 8 bytes and one fd (SCM_RIGHTS) of a memfd; the receiver closes every fd it gets.
 * Usage: fdpass MESSAGES WINDOW [peek|nofd|sendmmsg|mmsg]. WINDOW messages are sent, then WINDOW received (the
 * Node side does the same, so both measure throughput with the same amount of pipelining).
 *   nofd:     data only (8 bytes, no fd).
 *   sendmmsg: data only, each window sent with one sendmmsg, received with one recvmsg per message (what the
 *             library does).
 *   mmsg:     data only, each window sent with one sendmmsg and received with one recvmmsg: the kernel's own
 *             cost per message with every syscall batched. A floor, not a loop a library could run: recvmmsg
 *             needs room for every message before it reads any, and a receiver of arbitrary messages would
 *             truncate, and so lose, one bigger than its slot (this one knows its messages are 8 bytes).
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

/* The batched modes, data only: "sendmmsg" sends each window with one sendmmsg and receives it with one recvmsg
 * per message (what the library does); "mmsg" also receives the window with one recvmmsg. The headers are
 * built once, outside the timed loops, and every receive has the same room for fds as recv_one. */
enum { MMSG_MAX = 64, MMSG_SLOT = 4096 };
static int batch_send, batch_recv;
static struct mmsghdr out_msgs[MMSG_MAX], in_msgs[MMSG_MAX];
static struct iovec out_iov[MMSG_MAX], in_iov[MMSG_MAX];
static uint64_t out_seq[MMSG_MAX];
static char in_slots[MMSG_MAX][MMSG_SLOT];
static char in_control[MMSG_MAX][CMSG_SPACE(sizeof(int) * 253)];

static void batch_init(long window) {
  for (long i = 0; i < window; i++) {
    out_iov[i] = (struct iovec){&out_seq[i], sizeof out_seq[i]};
    out_msgs[i] = (struct mmsghdr){.msg_hdr = {.msg_iov = &out_iov[i], .msg_iovlen = 1}};
    in_iov[i] = (struct iovec){in_slots[i], MMSG_SLOT};
  }
}

static void send_window(int sock, long window) {
  for (long sent = 0; sent < window;) {
    int n = sendmmsg(sock, out_msgs + sent, (unsigned)(window - sent), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && errno != EINTR) die("sendmmsg");
    if (n > 0) sent += n;
  }
}

static void recv_window(int sock, long window) {
  for (long i = 0; i < window; i++) {
    /* recvmmsg writes msg_len and msg_flags, and the kernel shrinks msg_controllen: reset what it changed. */
    in_msgs[i].msg_hdr = (struct msghdr){.msg_iov = &in_iov[i], .msg_iovlen = 1, .msg_control = in_control[i],
                                         .msg_controllen = sizeof in_control[i]};
  }
  for (long got = 0; got < window;) {
    /* Every message of the window is queued by now: EAGAIN would be a bug in this loop, not a wait. */
    int n = recvmmsg(sock, in_msgs + got, (unsigned)(window - got), MSG_DONTWAIT | MSG_CMSG_CLOEXEC, NULL);
    if (n < 0 && errno != EINTR) die("recvmmsg");
    for (int i = 0; i < n; i++) {
      const struct mmsghdr *m = &in_msgs[got + i];
      if (m->msg_len != sizeof(uint64_t) || (m->msg_hdr.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
        fprintf(stderr, "recvmmsg: unexpected message (%u bytes, flags %#x)\n", m->msg_len, m->msg_hdr.msg_flags);
        exit(2);
      }
    }
    if (n > 0) got += n;
  }
}

static double run(int s0, int s1, int fd, long messages, long window) {
  double t0 = now_s();
  for (long done = 0; done < messages; done += window) {
    if (batch_send) send_window(s0, window);
    else for (long i = 0; i < window; i++) send_one(s0, fd, (uint64_t)(done + i));
    if (batch_recv) recv_window(s1, window);
    else for (long i = 0; i < window; i++) recv_one(s1);
  }
  return (double)messages / (now_s() - t0);
}

int main(int argc, char **argv) {
  long messages = argc > 1 ? atol(argv[1]) : 200000;
  long window = argc > 2 ? atol(argv[2]) : 32;
  peek_first = argc > 3 && !strcmp(argv[3], "peek");
  batch_recv = argc > 3 && !strcmp(argv[3], "mmsg");
  batch_send = batch_recv || (argc > 3 && !strcmp(argv[3], "sendmmsg"));
  no_fd = batch_send || (argc > 3 && !strcmp(argv[3], "nofd"));
  if (batch_send) {
    /* One thread sends a whole window before receiving any: it must fit the socket buffer (8-byte messages
     * of ~1 KiB truesize each in ~208 KiB), so windows stay small. */
    if (window < 1 || window > MMSG_MAX) {
      fprintf(stderr, "%s: WINDOW must be 1..%d\n", argv[3], MMSG_MAX);
      return 2;
    }
    batch_init(window);
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
