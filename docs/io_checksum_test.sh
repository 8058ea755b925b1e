#!/usr/bin/env bash
# io_checksum_test.sh IO_CHECKSUM - check docs/examples/io_checksum.c
# against sha256sum, byte for byte, on a tree built here: files of 0, 1,
# 64 KiB (the one-call read's limit) and 64 KiB + 1 bytes, 128 KiB and
# 1 MiB + 3 bytes (the chunked reads' edges), nested and empty
# directories, a name with spaces, and a symbolic link (skipped by both).
# Then the errors: a missing path, and (not as root) an unreadable file.
# docs/meson.build runs it once per I/O backend (WEFT_IO_BACKEND).
set -euo pipefail

prog=$(realpath "$1") # we cd below
tmp=$(mktemp -d)
trap 'chmod -R u+rwx "$tmp"; rm -rf "$tmp"' EXIT
cd "$tmp"

mkdir -p tree/a/b/c tree/empty "tree/with space"
: >tree/zero
printf x >tree/one
head -c 65536 /dev/urandom >tree/a/small-limit
head -c 65537 /dev/urandom >tree/a/small-limit+1
head -c 131072 /dev/urandom >tree/a/b/chunk
head -c $((1024 * 1024 + 3)) /dev/urandom >tree/a/b/c/big
for i in $(seq 1 40); do
	head -c $((i * 997)) /dev/urandom >"tree/a/b/many-$i"
done
echo hello >"tree/with space/file name"
ln -s ../one tree/a/link

# expect ARGS... - what sha256sum says about the regular files under ARGS.
expect() {
	find "$@" -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
}

fail=0
check() {
	if ! cmp -s want got; then
		echo "FAIL: io_checksum $*: output differs from sha256sum:"
		diff want got | head -20
		fail=1
	fi
}

"$prog" tree >got
expect tree >want
check tree

"$prog" tree/a/b tree/one tree/zero >got
expect tree/a/b tree/one tree/zero >want
check tree/a/b tree/one tree/zero

# A missing path: the message, exit status 1, the other files still done.
rc=0
"$prog" tree/one tree/nope >got 2>err || rc=$?
expect tree/one >want
check tree/one tree/nope
if [ "$rc" -ne 1 ] ||
	! grep -qx 'io_checksum: tree/nope: No such file or directory' err; then
	echo "FAIL: missing path: status $rc, stderr:"
	cat err
	fail=1
fi

# An unreadable file (root reads everything: skip it there).
if [ "$(id -u)" -ne 0 ]; then
	chmod 000 tree/a/b/chunk
	rc=0
	"$prog" tree/a/b >got 2>err || rc=$?
	if [ "$rc" -ne 1 ] ||
		! grep -qx 'io_checksum: tree/a/b/chunk: Permission denied' err ||
		grep -q 'tree/a/b/chunk' got; then
		echo "FAIL: unreadable file: status $rc, stderr:"
		cat err
		fail=1
	fi
fi

[ "$fail" -eq 0 ] && echo "io_checksum matches sha256sum (backend: ${WEFT_IO_BACKEND:-auto})"
exit "$fail"
