#!/bin/bash
# Fixture: the system tests' ISO, made ONCE per run from the image fixture's repo: the quorum answer
# file embedded and the serial-console unattended entry as the default (qemu reads ttyS0).
# Usage: build_iso.sh ARTIFACTS   (after build_image.sh ARTIFACTS)
set -euo pipefail
src=${STORMNODE_SOURCE_DIR:?}
bin=${STORMNODE_BINARY_DIR:?}
out=${1:?usage: build_iso.sh ARTIFACTS}
for tool in grub-mkrescue xorriso mksquashfs mformat; do
    command -v "$tool" >/dev/null || {
        echo "SKIP: $tool is not installed (xorriso grub-pc-bin grub-efi-amd64-bin mtools squashfs-tools)"
        exit 77
    }
done
[ -f "$out/image.env" ] || { echo "no image in $out (the system.image fixture failed)"; exit 1; }
# shellcheck source=/dev/null
. "$out/image.env"
rm -f "$out/stormnode.iso"
"$bin/bin/stormctl" iso build --repo "$out/repo" --ref "$REF" -o "$out/stormnode.iso" \
    --answers "$src/tests/system/data/quorum-answers.yaml" --catalog "$src/roles/catalog" --serial \
    | tee "$out/iso.out"
report=$(xorriso -indev "$out/stormnode.iso" -report_el_torito plain 2>/dev/null)
echo "$report"
grep -q 'El Torito boot img : .* BIOS' <<<"$report" || { echo "FAILED: no BIOS El Torito image"; exit 1; }
grep -q 'El Torito boot img : .* UEFI' <<<"$report" || { echo "FAILED: no UEFI El Torito image"; exit 1; }
# Stored once: the kernel and initramfs are the ISO's /boot files, listed (not stored) in the squashfs's
# repo; the installer writes them back from the media (image/media_objects.hpp).
squashfs=$(mktemp /var/tmp/stormnode-iso-squashfs.XXXXXX)
trap 'rm -f "$squashfs"' EXIT
xorriso -osirrox on -indev "$out/stormnode.iso" -extract /LiveOS/squashfs.img "$squashfs" 2>/dev/null
listed=$(unsquashfs -cat "$squashfs" sysroot/ostree/repo/stormnode-media-objects)
echo "media objects:"; echo "$listed"
for media in boot/vmlinuz boot/initrd.img; do
    grep -q " $media\$" <<<"$listed" || { echo "FAILED: $media is not listed as a media object"; exit 1; }
done
if unsquashfs -l "$squashfs" | grep -Eq 'usr/lib/modules/[^/]+/(vmlinuz|initramfs\.img)$'; then
    echo "FAILED: the squashfs still holds the kernel or the initramfs"
    exit 1
fi
