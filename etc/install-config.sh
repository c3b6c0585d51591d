#!/bin/sh
# Meson install script: installs one configuration file unless the target
# already exists, so that "meson install" on a running system never
# overwrites an administrator's /etc/inetd.conf, /etc/hosts.allow ... A
# package build installs into an empty DESTDIR and always gets the file.
# Usage: install-config.sh SOURCE DIRECTORY MODE   (DIRECTORY absolute)
set -eu
src=$1
dir=${DESTDIR:-}$2
mode=$3
dest=$dir/$(basename "$src")
if [ -e "$dest" ] || [ -L "$dest" ]; then
  echo "Keeping the existing $dest (the new one is in the examples directory)" >&2
  exit 0
fi
mkdir -p "$dir"
install -m "$mode" "$src" "$dest"
echo "Installing $src to $dir" >&2
