/* Load generator for the super-server benchmark (tests/bench/README.md).
 *
 * One thread, one epoll set, N concurrent clients against 127.0.0.1:PORT,
 * bounded by a count (-n) and a time (-t) in every mode:
 *
 *   spawn    connect, read until EOF, close; again. Connections/s and the
 *            per-connection latency (connect() to EOF), p50/p99.
 *   echo     N held connections, each sending SIZE bytes and waiting for
 *            them back, again. Round-trip latency p50/p99, round trips/s.
 *   hold     open N connections (at most 256 connects in flight), print
 *            "READY <opened>" and wait for a line on stdin (or -t seconds)
 *            while the caller measures memory, then check that every one
 *            still echoes SIZE bytes. Reports opened and answering.
 *   chargen  one connection, read for -t seconds. MB/s (10^6 bytes/s).
 *
 * Output: one line of JSON on stdout. Exit 0 if the run completed, even
 * with errors (they are counted); 2 on usage or setup failure.
 *
 *   loadgen MODE -p PORT [-H 127.0.0.1] [-c CONC] [-n COUNT] [-t SECONDS]
 *           [-s SIZE] [-w WARMUP]
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum mode { SPAWN, ECHO, HOLD, CHARGEN };

static struct sockaddr_in target;
static enum mode mode;
static int conc = 1;
static long count = 1000;     /* completions to record */
static double limit_s = 10;   /* wall-clock cap for the measured phase */
static int size = 64;         /* echo payload */
static long warmup = 0;       /* completions before recording starts */

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what) {
  fprintf(stderr, "loadgen: %s: %s\n", what, strerror(errno));
  exit(2);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of a sorted array. */
static double pct(const double *v, long n, double p) {
  if (n == 0) return 0;
  long k = (long)(p / 100.0 * n + 0.999999);
  if (k < 1) k = 1;
  if (k > n) k = n;
  return v[k - 1];
}

static int open_conn(void) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(fd, (struct sockaddr *)&target, sizeof target) < 0 && errno != EINPROGRESS) {
    close(fd);
    return -1;
  }
  return fd;
}

/* Close with a reset: the client side keeps no TIME_WAIT (echo, hold). */
static void close_rst(int fd) {
  struct linger lg = {.l_onoff = 1, .l_linger = 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  close(fd);
}

static void raise_nofile(rlim_t want) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) < 0) return;
  if (rl.rlim_cur >= want) return;
  rl.rlim_cur = want;
  if (rl.rlim_max < want) rl.rlim_max = want; /* root may raise the hard limit */
  if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

struct slot {
  int fd;
  double start;  /* connect() or send() time */
  int got;       /* bytes of the current answer */
  int phase;     /* hold: 0 connecting, 1 connected, 2 sent, 3 answered */
};

static double *lat;
static long nlat, done, errors, started;
static char buf[256 * 1024];
static char payload[65536];

static void record(double us) {
  if (done >= warmup && nlat < count) lat[nlat++] = us;
  done++;
}

static void print_latency(const char *name, double elapsed) {
  qsort(lat, nlat, sizeof *lat, cmp_double);
  double sum = 0;
  for (long i = 0; i < nlat; ++i) sum += lat[i];
  printf("{\"mode\":\"%s\",\"conc\":%d,\"total\":%ld,\"count\":%ld,\"errors\":%ld,\"elapsed\":%.4f,"
         "\"rate\":%.1f,\"p50_us\":%.1f,\"p99_us\":%.1f,\"max_us\":%.1f,\"mean_us\":%.1f}\n",
         name, conc, done, nlat, errors, elapsed, elapsed > 0 ? nlat / elapsed : 0, pct(lat, nlat, 50),
         pct(lat, nlat, 99), nlat ? lat[nlat - 1] : 0, nlat ? sum / nlat : 0);
}

/* spawn: every slot loops connect -> read to EOF -> close. */
static int run_spawn(int ep) {
  struct slot *s = calloc(conc, sizeof *s);
  struct epoll_event evs[64];
  double t0 = now_s(), t_rec = 0, deadline = t0 + limit_s;
  long want = warmup + count;
  int active = 0;
  for (int i = 0; i < conc; ++i) {
    s[i].fd = -1;
  }
  for (;;) {
    double now = now_s();
    int stop = done >= want || now >= deadline;
    /* (Re)start idle slots while there is work left. */
    for (int i = 0; i < conc && !stop; ++i) {
      if (s[i].fd >= 0 || started >= want) continue;
      int fd = open_conn();
      if (fd < 0) { errors++; continue; }
      struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.u32 = (uint32_t)i};
      if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) die("epoll_ctl");
      s[i].fd = fd;
      s[i].start = now_s();
      s[i].got = 0;
      started++;
      active++;
    }
    if (active == 0) break;
    if (now >= deadline + 2) break; /* stragglers: give up on them */
    int n = epoll_wait(ep, evs, 64, 100);
    for (int k = 0; k < n; ++k) {
      struct slot *c = &s[evs[k].data.u32];
      if (c->fd < 0) continue;
      int finished = 0, failed = 0;
      for (;;) {
        ssize_t r = read(c->fd, buf, sizeof buf);
        if (r > 0) { c->got += r; continue; }
        if (r == 0) { finished = 1; break; }
        if (errno == EAGAIN) break;
        failed = 1;
        break;
      }
      if (!finished && !failed && (evs[k].events & (EPOLLERR | EPOLLHUP))) failed = 1;
      if (!finished && !failed) continue;
      double t = now_s();
      if (finished && c->got > 0) {
        if (done == warmup) t_rec = t;
        record((t - c->start) * 1e6);
      } else {
        errors++;
        started--; /* retried */
      }
      close(c->fd);
      c->fd = -1;
      active--;
    }
  }
  double t1 = now_s();
  for (int i = 0; i < conc; ++i)
    if (s[i].fd >= 0) { close(s[i].fd); errors++; }
  /* Rate over the recorded phase only. */
  double elapsed = t_rec > 0 ? t1 - t_rec : t1 - t0;
  print_latency("spawn", elapsed);
  return 0;
}

/* Connect `n` sockets, at most `inflight` connects at a time; returns how
 * many are connected. Each slot is left registered with data.u32 = index. */
static long connect_many(int ep, struct slot *s, long n, int inflight, double deadline) {
  struct epoll_event evs[256];
  long next = 0, pending = 0, ok = 0;
  while ((next < n || pending > 0) && now_s() < deadline) {
    while (next < n && pending < inflight) {
      int fd = open_conn();
      s[next].phase = 0;
      s[next].got = 0;
      s[next].fd = fd;
      if (fd < 0) { errors++; next++; continue; }
      struct epoll_event ev = {.events = EPOLLOUT, .data.u32 = (uint32_t)next};
      if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) die("epoll_ctl");
      next++;
      pending++;
    }
    int m = epoll_wait(ep, evs, 256, 100);
    for (int k = 0; k < m; ++k) {
      struct slot *c = &s[evs[k].data.u32];
      if (c->phase != 0) continue;
      int err = 0;
      socklen_t len = sizeof err;
      getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
      pending--;
      if (err || (evs[k].events & (EPOLLERR | EPOLLHUP))) {
        epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
        c->fd = -1;
        errors++;
        continue;
      }
      c->phase = 1;
      ok++;
      struct epoll_event ev = {.events = EPOLLIN, .data.u32 = evs[k].data.u32};
      epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
    }
  }
  return ok;
}

static int send_payload(struct slot *c) {
  c->got = 0;
  c->start = now_s();
  ssize_t w = send(c->fd, payload, size, MSG_NOSIGNAL);
  return w == size ? 0 : -1;
}

/* Reads what is there; returns 1 when the whole answer is in, -1 on error. */
static int read_answer(struct slot *c) {
  for (;;) {
    ssize_t r = read(c->fd, buf, sizeof buf);
    if (r > 0) {
      c->got += r;
      if (c->got >= size) return 1;
      continue;
    }
    if (r < 0 && errno == EAGAIN) return 0;
    return -1;
  }
}

static int run_echo(int ep) {
  struct slot *s = calloc(conc, sizeof *s);
  struct epoll_event evs[64];
  double deadline = now_s() + limit_s;
  long want = warmup + count;
  long ok = connect_many(ep, s, conc, 256, deadline);
  if (ok < conc) fprintf(stderr, "loadgen: only %ld of %d connected\n", ok, conc);
  int live = 0;
  for (int i = 0; i < conc; ++i) {
    if (s[i].fd < 0) continue;
    if (send_payload(&s[i]) < 0) { errors++; close_rst(s[i].fd); s[i].fd = -1; continue; }
    live++;
  }
  double t0 = now_s(), t_rec = 0;
  while (live > 0 && done < want && now_s() < deadline) {
    int n = epoll_wait(ep, evs, 64, 100);
    for (int k = 0; k < n; ++k) {
      struct slot *c = &s[evs[k].data.u32];
      if (c->fd < 0) continue;
      int r = read_answer(c);
      if (r == 0) continue;
      if (r < 0) { errors++; close_rst(c->fd); c->fd = -1; live--; continue; }
      double t = now_s();
      if (done == warmup) t_rec = t;
      record((t - c->start) * 1e6);
      if (done < want && send_payload(c) < 0) { errors++; close_rst(c->fd); c->fd = -1; live--; }
    }
  }
  double t1 = now_s();
  for (int i = 0; i < conc; ++i)
    if (s[i].fd >= 0) close_rst(s[i].fd);
  print_latency("echo", t_rec > 0 ? t1 - t_rec : t1 - t0);
  return 0;
}

static int run_hold(int ep) {
  struct slot *s = calloc(conc, sizeof *s);
  struct epoll_event evs[256];
  double t0 = now_s();
  long opened = connect_many(ep, s, conc, 256, t0 + limit_s);
  double t_open = now_s() - t0;
  /* One round trip on each first: a connection the server accepted and
   * serves, not one waiting in its backlog. */
  long answered = 0, answered_before = 0;
  for (int round = 0; round < 2; ++round) {
    long live = 0;
    for (long i = 0; i < conc; ++i) {
      if (s[i].fd < 0) continue;
      if (send_payload(&s[i]) < 0) { errors++; close_rst(s[i].fd); s[i].fd = -1; continue; }
      s[i].phase = 2;
      live++;
    }
    answered = 0;
    double deadline = now_s() + limit_s;
    while (answered < live && now_s() < deadline) {
      int n = epoll_wait(ep, evs, 256, 100);
      for (int k = 0; k < n; ++k) {
        struct slot *c = &s[evs[k].data.u32];
        if (c->fd < 0 || c->phase != 2) continue;
        int r = read_answer(c);
        if (r == 0) continue;
        if (r < 0) { errors++; close_rst(c->fd); c->fd = -1; continue; }
        c->phase = 3;
        answered++;
      }
    }
    if (round == 0) {
      answered_before = answered;
      /* Everything is open and has answered once: let the caller measure. */
      printf("READY %ld\n", answered);
      fflush(stdout);
      struct pollfd p = {.fd = 0, .events = POLLIN};
      poll(&p, 1, (int)(limit_s * 1000));
      if (p.revents & POLLIN) {
        char line[64];
        if (read(0, line, sizeof line) < 0) { /* the caller went away: go on */ }
      }
    }
  }
  double elapsed = now_s() - t0;
  for (long i = 0; i < conc; ++i)
    if (s[i].fd >= 0) close_rst(s[i].fd);
  printf("{\"mode\":\"hold\",\"conc\":%d,\"opened\":%ld,\"answered_first\":%ld,\"answered\":%ld,"
         "\"errors\":%ld,\"open_s\":%.3f,\"elapsed\":%.3f}\n",
         conc, opened, answered_before, answered, errors, t_open, elapsed);
  return 0;
}

static int run_chargen(int ep) {
  (void)ep;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket");
  int rcv = 4 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv); /* capped by rmem_max */
  if (connect(fd, (struct sockaddr *)&target, sizeof target) < 0) die("connect");
  struct timeval tv = {.tv_sec = 1};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  /* Skip the first `warmup` bytes' worth of time: 10% of the run. */
  double t0 = now_s(), warm_end = t0 + limit_s * 0.1, end = t0 + limit_s, t_rec = 0;
  unsigned long long bytes = 0, total = 0;
  int eof = 0;
  for (;;) {
    double t = now_s();
    if (t >= end) break;
    ssize_t r = read(fd, buf, sizeof buf);
    if (r <= 0) { eof = 1; if (r < 0) errors++; break; }
    total += r;
    if (t >= warm_end) {
      if (t_rec == 0) t_rec = t;
      else bytes += r;
    }
  }
  double t1 = now_s();
  close(fd);
  double elapsed = t_rec > 0 ? t1 - t_rec : 0;
  printf("{\"mode\":\"chargen\",\"bytes\":%llu,\"total\":%llu,\"errors\":%ld,\"eof\":%d,"
         "\"elapsed\":%.4f,\"mb_s\":%.1f}\n",
         bytes, total, errors, eof, elapsed, elapsed > 0 ? bytes / elapsed / 1e6 : 0);
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: loadgen spawn|echo|hold|chargen -p PORT [-H ADDR] [-c N] [-n N] "
                    "[-t S] [-s SIZE] [-w N]\n");
    return 2;
  }
  if (!strcmp(argv[1], "spawn")) mode = SPAWN;
  else if (!strcmp(argv[1], "echo")) mode = ECHO;
  else if (!strcmp(argv[1], "hold")) mode = HOLD;
  else if (!strcmp(argv[1], "chargen")) mode = CHARGEN;
  else { fprintf(stderr, "loadgen: unknown mode %s\n", argv[1]); return 2; }
  const char *host = "127.0.0.1";
  int port = 0, opt;
  optind = 2;
  while ((opt = getopt(argc, argv, "H:p:c:n:t:s:w:")) != -1) {
    switch (opt) {
      case 'H': host = optarg; break;
      case 'p': port = atoi(optarg); break;
      case 'c': conc = atoi(optarg); break;
      case 'n': count = atol(optarg); break;
      case 't': limit_s = atof(optarg); break;
      case 's': size = atoi(optarg); break;
      case 'w': warmup = atol(optarg); break;
      default: return 2;
    }
  }
  if (port <= 0 || conc < 1 || conc > 100000 || count < 1 || count > 10000000 || limit_s <= 0 ||
      limit_s > 600 || size < 1 || size > (int)sizeof payload || warmup < 0) {
    fprintf(stderr, "loadgen: bad arguments\n");
    return 2;
  }
  memset(&target, 0, sizeof target);
  target.sin_family = AF_INET;
  target.sin_port = htons(port);
  if (inet_pton(AF_INET, host, &target.sin_addr) != 1) { fprintf(stderr, "loadgen: bad host\n"); return 2; }
  for (int i = 0; i < (int)sizeof payload; ++i) payload[i] = 'a' + i % 26;
  raise_nofile((rlim_t)conc + 64);
  lat = calloc(count, sizeof *lat);
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (!lat || ep < 0) die("setup");
  switch (mode) {
    case SPAWN: return run_spawn(ep);
    case ECHO: return run_echo(ep);
    case HOLD: return run_hold(ep);
    case CHARGEN: return run_chargen(ep);
  }
  return 2;
}
