#!/usr/bin/env bash
# A base image for the Dockerfile made on this machine, which reaches no image registry but
# Debian's package archive: a minimal Debian root filesystem with Python 3 (debootstrap, from
# the mirror apt uses here), imported into Docker. Prints its tag.
#
# The tag ends in a hash of this file, which holds every input (suite, packages, trimming):
# an unchanged base is built once per Docker engine and reused; any change here builds anew.
# Needs root, debootstrap and a Docker engine.
set -euo pipefail

SUITE=bookworm  # Python 3.11, the Dockerfile's default base's Python and Debian release
# python3-venv: `python3 -m venv` (the Dockerfile installs into a venv); passwd: useradd.
PACKAGES=python3,python3-venv,passwd

tag="source-amplemarket-base:$SUITE-$(sha256sum "${BASH_SOURCE[0]}" | cut -c1-12)"
if docker image inspect "$tag" >/dev/null 2>&1; then
  echo "$tag"
  exit 0
fi

# The first Debian mirror in apt's sources (one-line or deb822 form), else deb.debian.org.
mirror=$(grep -hsE '^[[:space:]]*(deb|URIs:)[[:space:]]' /etc/apt/sources.list \
  /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources \
  | grep -oE 'https?://[^[:space:]]+/debian/?' | grep -v security | head -n 1 || true)
mirror=${mirror:-http://deb.debian.org/debian}

root=$(mktemp -d /var/tmp/source-amplemarket-base.XXXXXX)
trap 'rm -rf "$root"' EXIT
chmod 755 "$root"  # the image's / (mktemp makes it 0700: no user but root could run a thing)
echo "Building the base image $tag: debootstrap $SUITE from $mirror" >&2
debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$root" "$mirror" >&2
# What a container does not need: package indexes and caches, documentation, translations.
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/* "$root"/var/cache/debconf/*-old \
  "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* \
  "$root"/usr/share/locale/* "$root"/var/log/*
# Labelled with its Python's version: wheels built for the image must match it.
python=$(chroot "$root" python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
tar -C "$root" --numeric-owner --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' \
  -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change "LABEL python.version=$python" \
  --change 'CMD ["python3"]' \
  - "$tag" >&2
echo "$tag"
