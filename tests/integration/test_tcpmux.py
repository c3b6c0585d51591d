"""tcpmux (RFC 1078) through the real daemon: "help", an unknown name, a
service that answers for itself, a "+" service acknowledged by inetd, names
without regard to case, and the service running as its configured user
with the connection exactly as it stands after the request line."""

import pwd
import socket

import harness
from harness import InetdTestCase, tcp_exchange


class TcpmuxTest(InetdTestCase):

    def setUp(self):
        super().setUp()
        self.port = self.d.port()
        # "cat" gets every byte after the request line: proves nothing past
        # the line was consumed by the listener.
        self.d.start(
            f"127.0.0.1:{self.port} stream tcp nowait root internal tcpmux\n"
            "tcpmux/Echo-Rest stream tcp nowait nobody /bin/sh sh -c 'echo +ok; id -u; cat'\n"
            "tcpmux/+whoami stream tcp nowait nobody /usr/bin/id id -un\n")

    def test_help_lists_the_names(self):
        got = tcp_exchange("127.0.0.1", self.port, b"help\r\n")
        self.assertEqual(got, b"Echo-Rest\r\nwhoami\r\n", self.logmsg())

    def test_unknown_name_is_refused(self):
        got = tcp_exchange("127.0.0.1", self.port, b"nosuch\r\n")
        self.assertEqual(got, b"-Service not available\r\n", self.logmsg())

    def test_service_answers_for_itself_and_gets_the_rest(self):
        got = tcp_exchange("127.0.0.1", self.port, b"ECHO-REST\r\nrest of the stream\n")
        nobody = pwd.getpwnam("nobody").pw_uid
        self.assertEqual(got, b"+ok\n%d\nrest of the stream\n" % nobody, self.logmsg())

    def test_plus_service_is_acknowledged(self):
        got = tcp_exchange("127.0.0.1", self.port, b"whoami\n")
        self.assertEqual(got, b"+Go\r\nnobody\n", self.logmsg())

    def test_garbage_request_is_refused_and_daemon_stays(self):
        got = tcp_exchange("127.0.0.1", self.port, b"\x00\x01bad name\r\n")
        self.assertEqual(got, b"-Service not available\r\n")
        got = tcp_exchange("127.0.0.1", self.port, b"x" * 258)  # just over the line limit
        self.assertEqual(got, b"-Request too long\r\n")
        self.assertEqual(tcp_exchange("127.0.0.1", self.port, b"whoami\n"), b"+Go\r\nnobody\n")
        self.assertNotRegex(self.d.log(), r"violation", self.d.log())
