"""Runs one integration test module for meson: exit 0 on success, 1 on
failure, 77 (meson's "skipped") when every test in it was skipped, e.g. when
not run as root or when the Debian tools it needs are missing.

usage: python3 run.py MODULE   (MODULE is test_services, test_debian ...)

By hand, as root, from the source tree:
    INETD=build/inetd python3 tests/integration/run.py test_services
    INETD=build/inetd python3 -m unittest -v test_config.ConfigTest.test_sighup_reload
        (the second from tests/integration/)
INETD_IT_KEEP=1 keeps each test's temporary directory (config, inetd.log).
"""

import os
import sys
import unittest

SKIP = 77


def main(argv):
    if len(argv) != 2:
        sys.stderr.write(__doc__)
        return 2
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, here)
    sys.dont_write_bytecode = True  # nothing written into the source tree
    suite = unittest.defaultTestLoader.loadTestsFromName(argv[1])
    result = unittest.TextTestRunner(stream=sys.stderr, verbosity=2).run(suite)
    if not result.wasSuccessful():
        return 1
    if result.testsRun == len(result.skipped) or (result.testsRun == 0 and result.skipped):
        for test, reason in result.skipped:
            print(f"skipped: {reason}")
        return SKIP
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
