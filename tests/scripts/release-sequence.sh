#!/usr/bin/env bash
# The offline release sequence of the core issue, exactly as an operator types it:
# two root keys, two release keys, one online key; a 2-of-2 root and release role; a
# 64 MiB release for device type "pump"; then verify at every step. Each expected
# failure must also name the rule that failed.
#
# usage: tests/scripts/release-sequence.sh [path/to/shoal-seeder]
set -euo pipefail

bin=${1:-shoal-seeder}
case "$bin" in /*) ;; */*) bin="$PWD/$bin" ;; esac
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

step() { printf '== %s\n' "$*"; }
fail() { printf 'release-sequence: FAILED: %s\n' "$*" >&2; exit 1; }

# expect_fail RULE COMMAND...: the command must exit non-zero with one stderr line
# that names RULE.
expect_fail() {
  local rule=$1; shift
  if "$@" >out.txt 2>err.txt; then
    fail "expected failure ($rule) but it passed: $*"
  fi
  [ "$(wc -l <err.txt)" -eq 1 ] || fail "expected one line on stderr, got: $(cat err.txt)"
  grep -q -- "$rule" err.txt || fail "expected '$rule' in: $(cat err.txt)"
  printf '   refused as expected: %s\n' "$(cat err.txt)"
}

step "keygen: two root keys, two release keys, one online key"
for k in root1 root2 release1 release2 online; do
  "$bin" keygen --out "$k.key"
done
[ "$(stat -c %a root1.key)" = 600 ] || fail "secret key mode is $(stat -c %a root1.key), not 600"

step "root create: root threshold 2, release threshold 2"
"$bin" root create --root-key root1.key --root-key root2.key --root-threshold 2 \
  --release-pub release1.key.pub --release-pub release2.key.pub --release-threshold 2 \
  --online-pub online.key.pub --out root.shoal

step "release create: a 64 MiB file, counter 1, device type pump"
head -c $((64 * 1024 * 1024)) /dev/urandom >image.bin
"$bin" release create --name pump-firmware --version 1.0.0 --counter 1 --device-type pump \
  --out rel.shoal image.bin
cp rel.shoal unsigned.shoal

step "verify fails while unsigned"
expect_fail "rule 'threshold'" "$bin" release verify --root root.shoal rel.shoal

step "verify still fails with one release signature"
"$bin" release sign --key release1.key rel.shoal
expect_fail "rule 'threshold'" "$bin" release verify --root root.shoal rel.shoal

step "verify still fails after the same key signs a second time"
"$bin" release sign --key release1.key rel.shoal
expect_fail "1 duplicate" "$bin" release verify --root root.shoal rel.shoal

step "verify passes after the second release key signs"
"$bin" release sign --key release2.key rel.shoal
"$bin" release verify --root root.shoal rel.shoal

step "verify fails with --device-type fan"
expect_fail "rule 'device-type'" "$bin" release verify --root root.shoal rel.shoal --device-type fan

step "verify fails after one byte of the signed body changes"
cp rel.shoal tampered.shoal
# offset 16 is the first byte of the release name (after the u64 body length and the
# u64 name length): 'p' becomes 'P'
printf 'P' | dd of=tampered.shoal bs=1 seek=16 conv=notrunc status=none
cmp -s rel.shoal tampered.shoal && fail "the tampered copy did not change"
expect_fail "do not verify" "$bin" release verify --root root.shoal tampered.shoal

step "verify fails when the online key signs in place of the second release key"
cp unsigned.shoal online-signed.shoal
"$bin" release sign --key release1.key online-signed.shoal
"$bin" release sign --key online.key online-signed.shoal
expect_fail "1 by keys of another role" "$bin" release verify --root root.shoal online-signed.shoal

echo "release-sequence: all steps behaved as specified"
