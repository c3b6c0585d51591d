"""auth / ident (RFC 1413) through the real daemon: the owner of a real
loopback connection, found by the sandboxed listener through sock_diag,
answered in FreeBSD's format, with -r (real names), -i (numbers), and
without -r (hidden); and malformed requests answered or closed."""

import encodings.idna  # noqa: F401 - loaded before the child drops to nobody
import os
import pwd
import socket
import time

from harness import InetdTestCase, tcp_exchange


class IdentTest(InetdTestCase):

    def setUp(self):
        super().setUp()
        self.real, self.num, self.hidden = self.d.port(), self.d.port(), self.d.port()
        self.d.start(
            f"127.0.0.1:{self.real} stream tcp nowait root internal auth -r\n"
            f"127.0.0.1:{self.num} stream tcp nowait root internal auth -r -i\n"
            f"127.0.0.1:{self.hidden} stream tcp nowait root internal auth\n")
        # A connection owned by nobody: a child process drops to nobody and
        # connects to a listener of the test's.
        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(1)
        self.server_port = self.srv.getsockname()[1]
        r, w = os.pipe()
        self.child = os.fork()
        if self.child == 0:  # never returns into the test runner
            try:
                os.close(r)
                os.setgroups([])
                os.setgid(65534)
                os.setuid(pwd.getpwnam("nobody").pw_uid)
                c = socket.create_connection(("127.0.0.1", self.server_port))
                os.write(w, b"%d\n" % c.getsockname()[1])
                time.sleep(10)  # holds the connection; killed in tearDown
            except BaseException as e:  # noqa: BLE001 - report, then leave
                os.write(2, repr(e).encode())
            finally:
                os._exit(0)
        os.close(w)
        self.client_port = int(os.read(r, 32))
        os.close(r)
        self.conn, _ = self.srv.accept()

    def tearDown(self):
        self.conn.close()
        self.srv.close()
        os.kill(self.child, 9)
        os.waitpid(self.child, 0)
        super().tearDown()

    def query(self, port):
        # The ident client asks about a connection between its host and ours:
        # from the listener's side, local = the nobody socket's port.
        q = b"%d , %d\r\n" % (self.client_port, self.server_port)
        return tcp_exchange("127.0.0.1", port, q)

    def test_real_name(self):
        want = b"%d , %d : USERID : " % (self.client_port, self.server_port)
        got = self.query(self.real)
        self.assertTrue(got.startswith(want), got + self.logmsg().encode())
        self.assertTrue(got.endswith(b" : nobody\r\n"), got)

    def test_number(self):
        got = self.query(self.num)
        self.assertTrue(got.endswith(b" : %d\r\n" % pwd.getpwnam("nobody").pw_uid), got)

    def test_hidden_without_r(self):
        got = self.query(self.hidden)
        self.assertEqual(got, b"%d , %d : ERROR : HIDDEN-USER\r\n"
                         % (self.client_port, self.server_port))

    def test_no_such_connection_and_garbage(self):
        got = tcp_exchange("127.0.0.1", self.real, b"1 , 2\r\n")
        self.assertEqual(got, b"1 , 2 : ERROR : NO-USER\r\n")
        got = tcp_exchange("127.0.0.1", self.real, b"hello there\r\n")
        self.assertIn(b"ERROR : INVALID-PORT", got)
        self.assertEqual(tcp_exchange("127.0.0.1", self.real, b"x" * 999), b"")
        self.assertNotRegex(self.d.log(), r"violation|killed by signal")
