#!/usr/bin/env bash
# A base image for the Dockerfile made on this machine, which reaches no image registry but
# Debian's package archive: a minimal Debian root filesystem with Python 3 (debootstrap, from
# the mirror apt uses here) and every update of Debian's security and updates suites (says so
# on stderr, and in the label debian.security, when they cannot be reached), imported into
# Docker. Prints its tag.
#
# The tag ends in the ISO week and a hash of this file, which holds every input (suite,
# packages, trimming): an unchanged base is built once a week per Docker engine and reused,
# so its security updates are at most a week old; any change here builds anew.
# Needs root, debootstrap and a Docker engine.
set -euo pipefail

SUITE=bookworm  # Python 3.11, the Dockerfile's default base's Python and Debian release
# python3-venv: `python3 -m venv` (the Dockerfile installs into a venv); passwd: useradd.
PACKAGES=python3,python3-venv,passwd

tag="source-amplemarket-base:$SUITE-$(date -u +%GW%V)-$(sha256sum "${BASH_SOURCE[0]}" | cut -c1-12)"
if docker image inspect "$tag" >/dev/null 2>&1; then
  echo "$tag"
  exit 0
fi

# The first Debian mirror and security mirror in apt's sources (one-line or deb822 form), else
# Debian's own.
sources() {
  grep -hsE '^[[:space:]]*(deb|URIs:)[[:space:]]' /etc/apt/sources.list \
    /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources \
    | grep -oE "https?://[^[:space:]]+/$1/?([[:space:]]|$)" | head -n 1 | tr -d '[:space:]' || true
}
mirror=$(sources debian)
mirror=${mirror:-http://deb.debian.org/debian}
security=$(sources debian-security)
security=${security:-http://deb.debian.org/debian-security}

root=$(mktemp -d /var/tmp/source-amplemarket-base.XXXXXX)
trap 'rm -rf "$root"' EXIT
chmod 755 "$root"  # the image's / (mktemp makes it 0700: no user but root could run a thing)
echo "Building the base image $tag: debootstrap $SUITE from $mirror" >&2
debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$root" "$mirror" >&2
# Debian's updates, security ones first among them: the release as debootstrap installs it
# is months behind (openssl, python3.11, zlib...). apt in the image keeps these sources.
cat > "$root/etc/apt/sources.list" <<SOURCES
deb $mirror $SUITE main
deb $mirror $SUITE-updates main
deb $security $SUITE-security main
SOURCES
mount -t proc proc "$root/proc"
trap 'umount "$root/proc" 2>/dev/null || true; rm -rf "$root"' EXIT
if chroot "$root" apt-get update -qq --error-on=any >&2; then
  DEBIAN_FRONTEND=noninteractive chroot "$root" apt-get upgrade -y -qq >&2
  updates="$SUITE-security and $SUITE-updates applied"
  echo "Base image $tag: $updates" >&2
else
  updates="not applied: $security did not answer"
  echo "WARNING: base image $tag WITHOUT Debian's security updates ($security did not" \
    "answer): it has $SUITE's packages as released" >&2
fi
umount "$root/proc"
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
  --change "LABEL debian.security=\"$updates\"" \
  --change 'CMD ["python3"]' \
  - "$tag" >&2
# The bases this one replaces (other weeks, other versions of this file).
docker image ls --format '{{.Repository}}:{{.Tag}}' source-amplemarket-base | grep -vxF "$tag" \
  | xargs -r docker image rm >&2 || true
echo "$tag"
