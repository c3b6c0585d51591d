/* The service program of the benchmark, built static when libc.a is there.
 *
 *   hello            write one line to fd 1 and exit (workload A)
 *   hello chargen    RFC 864 lines to fd 1, 64 KiB per write, until the
 *                    reader goes away (the floor's external chargen, C)
 *   hello echo       copy fd 0 to fd 1 until EOF (the floor's echo, B)
 */
#include <string.h>
#include <unistd.h>

static char buf[(64 * 1024 / 74 + 2 + 95) * 74]; /* 64 KiB + a cycle, whole lines */

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "chargen") == 0) {
    /* 95 lines of 72 printable characters + CRLF make one whole cycle;
     * the buffer holds 64 KiB plus one cycle, so a write starting at any
     * line offset is 64 KiB of the right stream. */
    size_t n = 0;
    for (int line = 0; n + 74 <= sizeof buf; ++line) {
      for (int i = 0; i < 72; ++i) buf[n++] = (char)(' ' + (line + i) % 95);
      buf[n++] = '\r';
      buf[n++] = '\n';
    }
    size_t off = 0;
    for (;;) {
      ssize_t w = write(1, buf + off, 64 * 1024);
      if (w <= 0) return 0;
      off = (off + (size_t)w) % (95 * 74);
    }
  }
  if (argc > 1 && strcmp(argv[1], "echo") == 0) {
    for (;;) {
      ssize_t r = read(0, buf, sizeof buf);
      if (r <= 0) return 0;
      for (ssize_t o = 0; o < r;) {
        ssize_t w = write(1, buf + o, (size_t)(r - o));
        if (w <= 0) return 0;
        o += w;
      }
    }
  }
  static const char line[] = "hello from the benchmark service\n";
  return write(1, line, sizeof line - 1) == (ssize_t)(sizeof line - 1) ? 0 : 1;
}
