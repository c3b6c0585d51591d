#!/bin/sh
# Installs what building and testing need on Debian 12, only what is
# missing, and creates the listener's user. Run as root; idempotent.
set -eu
pkgs="meson ninja-build pkg-config g++ python3 libcap-ng-dev libseccomp-dev
      protobuf-compiler libprotobuf-dev libgtest-dev
      mandoc tcpd netcat-openbsd tftpd-hpa tftp-hpa rsync git rdate procps iproute2"
missing=""
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "installing:$missing"
  apt-get update -q
  # The packaged tftpd must not grab port 69 for itself: we run in.tftpd
  # under inetd only. RUNLEVEL=1 keeps invoke-rc.d from starting it.
  DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 apt-get install -y -q --no-install-recommends $missing
fi
# Some container images ship /dev/null as a regular file. glibc's daemon()
# refuses one (so would `inetd` without -d/-D), and every program that
# writes there leaves bytes for the next reader: make it the device again.
# Made beside it and renamed over it, so /dev/null is never missing; where
# no device node can be made, say so and go on.
if [ ! -c /dev/null ]; then
  echo "/dev/null is not a character device: recreating it"
  if mknod -m 666 /dev/null.inetd-new c 1 3; then
    mv -f /dev/null.inetd-new /dev/null
  else
    echo "cannot make a device node here: inetd without -d/-D will refuse to start" >&2
  fi
fi
# The listener's unprivileged user (etc/sysusers.d/inetd.conf says the same).
if ! getent passwd _inetd >/dev/null; then
  useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin \
    --user-group _inetd
fi
