/* The floor: the least work any super-server can do per connection.
 * Accept, fork, put the socket on 0/1/2, exec the service program. No
 * limits, no logging, no credentials; children reaped with waitpid(WNOHANG)
 * once per accept (measured faster here than letting the kernel reap with
 * SIGCHLD ignored: 1.5x the rate at concurrency 32). Listens on
 * 127.0.0.1:PORT only.
 *
 *   floor [-s] [-a KIB] PORT PROGRAM [ARG...]
 *
 * Variants, to measure spawn strategies (run.py --variants):
 *   -s       posix_spawn (glibc: clone(CLONE_VM|CLONE_VFORK), the parent
 *            waits until the child has exec'd) instead of fork
 *   -a KIB   allocate and dirty KIB of heap first, so fork has a daemon's
 *            worth of pages to copy-on-write (built also as floor-fat,
 *            linked with the monitor's libraries, for their mappings)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

int main(int argc, char **argv) {
  int use_spawn = 0, opt;
  long dirty_kib = 0;
  while ((opt = getopt(argc, argv, "+sa:")) != -1) {
    if (opt == 's') use_spawn = 1;
    else if (opt == 'a') dirty_kib = atol(optarg);
    else return 2;
  }
  if (argc - optind < 2) {
    fprintf(stderr, "usage: floor [-s] [-a KIB] PORT PROGRAM [ARG...]\n");
    return 2;
  }
  if (dirty_kib > 0) {
    /* Many small blocks, as a C++ daemon's heap is, all touched. */
    for (long i = 0; i < dirty_kib * 4; ++i) {
      char *p = malloc(256);
      if (p) memset(p, 1, 256);
    }
  }
  char **prog = argv + optind + 1;
  int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[optind]))};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof a) < 0 || listen(ls, SOMAXCONN) < 0) {
    perror("floor: bind");
    return 1;
  }
  for (;;) {
    int c = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
    if (c < 0) continue;
    if (use_spawn) {
      posix_spawn_file_actions_t fa;
      posix_spawn_file_actions_init(&fa);
      for (int fd = 0; fd <= 2; ++fd) posix_spawn_file_actions_adddup2(&fa, c, fd);
      posix_spawnattr_t at;
      posix_spawnattr_init(&at);
      pid_t pid;
      posix_spawn(&pid, prog[0], &fa, &at, prog, environ);
      posix_spawnattr_destroy(&at);
      posix_spawn_file_actions_destroy(&fa);
    } else {
      pid_t pid = fork();
      if (pid == 0) {
        dup2(c, 0); /* dup2 clears close-on-exec on the copies */
        dup2(c, 1);
        dup2(c, 2);
        execv(prog[0], prog);
        _exit(127);
      }
    }
    close(c);
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
  }
}
