#!/bin/bash
# Integration (root, loop devices): stormctl install onto a sparse disk image from a small signed
# commit (a tiny tree with a fake kernel: enough for partitions, deploy, node.yaml and both GRUB
# installs, not for booting — the qemu system tests boot the real image). Then what a user would
# check: partitions and labels, the deployment, node.yaml, grub.cfg, GRUB's core image in the BIOS boot
# partition, BOOTX64.EFI on the ESP; a re-run over an installed disk; refusals (unsigned commit,
# unknown key, too small, mounted disk) that leave the disk untouched; a kill after each phase that
# leaves no bootloader until the last phase, and a re-run that completes; os upgrade and rollback.
# Env: STORMNODE_BINARY_DIR (set by ctest).
set -uo pipefail

bin=${STORMNODE_BINARY_DIR:?}
stormctl="$bin/bin/stormctl"
ref=stormnode/bookworm/x86_64/node
failures=0
checks=0

if [ "$(id -u)" != 0 ]; then
    echo "needs root (loop devices, mount)"
    exit 77
fi
for tool in losetup partx sfdisk mkfs.ext4 mkfs.vfat grub-install grub-mkstandalone mcopy mdir ostree gpg; do
    if ! command -v "$tool" >/dev/null; then
        echo "missing $tool (tests/run-all installs the test dependencies)"
        exit 77
    fi
done
if [ ! -d /usr/lib/grub/i386-pc ] || [ ! -d /usr/lib/grub/x86_64-efi ]; then
    echo "missing grub-pc-bin or grub-efi-amd64-bin"
    exit 77
fi
if ! losetup -f >/dev/null 2>&1; then
    echo "no free loop device"
    exit 77
fi

work=$(mktemp -d /tmp/stormnode-install-it.XXXXXX)
loops=()
cleanup() {
    umount -R "$work/mnt" 2>/dev/null
    for l in "${loops[@]}"; do
        partx -d "$l" 2>/dev/null
        losetup -d "$l" 2>/dev/null
    done
    for home in "$work/gpg" "$work/gpg-other"; do
        [ -d "$home" ] && gpgconf --homedir "$home" --kill gpg-agent 2>/dev/null
    done
    rm -rf "$work"
}
trap cleanup EXIT

# check / check_fails: counted checks with the output of a failed one.
. "$(dirname "$0")/../checks.sh"

# Keys: the image's and an unknown one.
mkdir -m 0700 "$work/gpg" "$work/gpg-other"
for home in "$work/gpg" "$work/gpg-other"; do
    gpg --homedir "$home" --batch --pinentry-mode loopback --passphrase '' \
        --quick-gen-key "stormnode test <test@stormnode.invalid>" rsa2048 sign never 2>/dev/null
done
fpr=$(gpg --homedir "$work/gpg" --batch --with-colons --list-secret-keys | awk -F: '/^fpr/ {print $10; exit}')
other=$(gpg --homedir "$work/gpg-other" --batch --with-colons --list-secret-keys | awk -F: '/^fpr/ {print $10; exit}')
gpg --homedir "$work/gpg" --batch --armor --export "$fpr" >"$work/pub.asc"

# A tiny tree shaped like the image: kernel and initramfs under /usr/lib/modules, /etc in /usr/etc,
# the key and the node's remote as the image build ships them.
make_tree() {  # make_tree DIR VERSION
    local t=$1 kver=6.1.0-stormnode-test
    mkdir -p "$t/usr/lib/modules/$kver" "$t/usr/etc/ostree/remotes.d" "$t/usr/share/stormnode/keys" "$t/usr/lib" \
        "$t/boot" "$t/var" "$t/sysroot" "$t/dev" "$t/proc" "$t/sys" "$t/run"
    echo "fake kernel $2" >"$t/usr/lib/modules/$kver/vmlinuz"
    echo "fake initramfs $2" >"$t/usr/lib/modules/$kver/initramfs.img"
    printf 'NAME="stormnode"\nID=debian\nVERSION_ID=12\nPRETTY_NAME="stormnode %s"\n' "$2" >"$t/usr/lib/os-release"
    echo "# UNCONFIGURED FSTAB" >"$t/usr/etc/fstab"
    echo "image $2" >"$t/usr/etc/motd"
    cp "$work/pub.asc" "$t/usr/share/stormnode/keys/stormnode.asc"
    printf '[remote "stormnode"]\nurl=http://stormnode-repo.invalid/ostree\ngpg-verify=true\ngpgkeypath=/usr/share/stormnode/keys/stormnode.asc\n' \
        >"$t/usr/etc/ostree/remotes.d/stormnode.conf"
    ln -s sysroot/ostree "$t/ostree"
}
make_repo() {  # make_repo REPO KEY-HOME KEY-ID|"" VERSION
    local repo=$1 home=$2 key=$3 version=$4 tree="$work/tree-$RANDOM"
    [ -d "$repo" ] || ostree init --repo="$repo" --mode=archive >/dev/null
    make_tree "$tree" "$version"
    local sign=()
    [ -n "$key" ] && sign=(--gpg-sign="$key" --gpg-homedir="$home")
    ostree commit --repo="$repo" --branch="$ref" --subject="test $version" --add-metadata-string=version="$version" \
        "${sign[@]}" "$tree" >/dev/null
    rm -rf "$tree"
}
make_repo "$work/repo" "$work/gpg" "$fpr" 1.0
make_repo "$work/repo-unsigned" "" "" 1.0
make_repo "$work/repo-other" "$work/gpg-other" "$other" 1.0
commit=$(ostree rev-parse --repo="$work/repo" "$ref")

cat >"$work/answers.yaml" <<YAML
disk: /dev/vdz
wipe: true
roles: []
hostname: node-7
zone: rack-3
network: {interface: eth0, mode: static, address: 10.0.0.5/24, gateway: 10.0.0.1, dns: [10.0.0.2]}
root:
  ssh_keys: ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE7aHsrSz0xMU1KgXm6lABzjSSHxW1HzDm1aS1Ftl0iA admin@laptop"]
YAML

truncate -s 4G "$work/disk.img"
base_args=(--answers "$work/answers.yaml" --gpg-key "$work/pub.asc" --yes --cmdline-file "$work/cmdline")
install_args=("${base_args[@]}" --disk "$work/disk.img" --source-repo "$work/repo")
echo "BOOT_IMAGE=/live/vmlinuz console=tty0 console=ttyS0,115200 stormnode.install=unattended" >"$work/cmdline"

start=$(date +%s%N)
check "install to a sparse 4 GiB disk image" "$stormctl" install "${install_args[@]}"
cp "$work/check.out" "$work/install.out"
echo "install took $(( ($(date +%s%N) - start) / 1000000 )) ms"
for phase in partition format pull deploy configure bootloader; do
    check "phase line '$phase'" grep -qx "stormnode-install: phase $phase" "$work/install.out"
done
check "done line" grep -qx "stormnode-install: phase done" "$work/install.out"

# Inspect the disk the way a user would.
inspect() {
    loop=$(losetup --find --show "$work/disk.img")
    loops+=("$loop")
    partx -a "$loop"
    mkdir -p "$work/mnt"
    mount "${loop}p4" "$work/mnt" && mount "${loop}p3" "$work/mnt/boot"
}
release() {
    umount -R "$work/mnt"
    partx -d "$loop"
    losetup -d "$loop"
    loops=()
}
inspect
check "GPT: BIOS boot, ESP, /boot, root" bash -c "sfdisk --dump '$loop' | grep -c 'type=' | grep -qx 4 &&
    sfdisk --dump '$loop' | grep -q 'type=21686148-6449-6E6F-744E-656564454649' &&
    sfdisk --dump '$loop' | grep -q 'type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B'"
check "labels stormnode-boot and stormnode-root" bash -c "[ \"\$(blkid -s LABEL -o value ${loop}p3)\" = stormnode-boot ] &&
    [ \"\$(blkid -s LABEL -o value ${loop}p4)\" = stormnode-root ] && [ \"\$(blkid -s TYPE -o value ${loop}p2)\" = vfat ]"
check "one deployment of the signed commit" bash -c "ls -d '$work/mnt/ostree/deploy/stormnode/deploy/$commit.0'"
dep="$work/mnt/ostree/deploy/stormnode/deploy/$commit.0"
check "node.yaml has the answer file's hostname, zone and network" bash -c "grep -q 'hostname: node-7' '$dep/etc/stormnode/node.yaml' &&
    grep -q 'zone: rack-3' '$dep/etc/stormnode/node.yaml' && grep -q '10.0.0.5/24' '$dep/etc/stormnode/node.yaml'"
check "root's authorized_keys, 0600" bash -c "[ \"\$(stat -c %a '$work/mnt/ostree/deploy/stormnode/var/roothome/.ssh/authorized_keys')\" = 600 ] &&
    grep -q admin@laptop '$work/mnt/ostree/deploy/stormnode/var/roothome/.ssh/authorized_keys'"
check "fstab mounts /boot by label" grep -q '^LABEL=stormnode-boot /boot ext4' "$dep/etc/fstab"
check "grub.cfg lists the deployment with the node's kernel arguments" bash -c "grep -q 'menuentry' '$work/mnt/boot/grub/grub.cfg' &&
    grep -E -q 'linux /ostree/stormnode-[0-9a-f]+/vmlinuz-6.1.0-stormnode-test .*root=LABEL=stormnode-root rw systemd.gpt_auto=0 console=tty0 console=ttyS0,115200 .*ostree=/ostree/boot' '$work/mnt/boot/grub/grub.cfg'"
check "the repo has no transient remote and the ref stormnode:$ref" bash -c "ostree --repo='$work/mnt/ostree/repo' remote list | grep -vq . ;
    [ \"\$(ostree --repo='$work/mnt/ostree/repo' rev-parse 'stormnode:$ref')\" = '$commit' ]"
check "GRUB's core image in the BIOS boot partition, the MBR pointing at it" bash -c "
    [ \"\$(dd if='${loop}p1' bs=64k count=1 2>/dev/null | tr -d '\\0' | wc -c)\" -gt 1000 ] &&
    [ \"\$(od -An -tu8 -j92 -N8 '$loop' | tr -d ' ')\" = 2048 ]"
check "GRUB's boot code in the MBR" bash -c "dd if='$loop' bs=440 count=1 2>/dev/null | grep -aq GRUB"
check "BOOTX64.EFI on the ESP" bash -c "MTOOLS_SKIP_CHECK=1 mdir -i '${loop}p2' ::/EFI/BOOT | grep -q BOOTX64"
check "os status lists the deployment" bash -c "'$stormctl' os status --sysroot '$work/mnt' | grep -q '$commit.0  version 1.0'"

# Upgrade and rollback on the mounted disk, as the qemu test will.
make_repo "$work/repo" "$work/gpg" "$fpr" 2.0
commit2=$(ostree rev-parse --repo="$work/repo" "$ref")
echo "locally changed" >"$dep/etc/motd.local"
check "os upgrade from the source repo" "$stormctl" os upgrade --sysroot "$work/mnt" --source-repo "$work/repo"
check "upgrade: new default first, previous as rollback" bash -c "'$stormctl' os status --sysroot '$work/mnt' | head -1 | grep -q '^\* stormnode $commit2' &&
    '$stormctl' os status --sysroot '$work/mnt' | grep '$commit.0' | grep -q rollback"
check "upgrade merged /etc (local file kept)" test -f "$work/mnt/ostree/deploy/stormnode/deploy/$commit2.0/etc/motd.local"
check "upgrade: grub.cfg has two entries, the rollback second" bash -c "[ \"\$(grep -c ^menuentry '$work/mnt/boot/grub/grub.cfg')\" = 2 ] &&
    grep ^menuentry '$work/mnt/boot/grub/grub.cfg' | sed -n 2p | grep -q rollback"
check "os rollback" "$stormctl" os rollback --sysroot "$work/mnt"
check "rollback: the old commit is the default again" bash -c "'$stormctl' os status --sysroot '$work/mnt' | head -1 | grep -q '^\* stormnode $commit'"
make_repo "$work/repo-evil" "$work/gpg-other" "$other" 3.0
check_fails "upgrade signed by an unknown key is refused" "not signed|public key|signature" \
    "$stormctl" os upgrade --sysroot "$work/mnt" --source-repo "$work/repo-evil" --gpg-key "$work/pub.asc"
release

# Refusals leave the disk untouched.
disk_sum() { { head -c 8M "$work/disk.img"; tail -c 1M "$work/disk.img"; } | sha256sum; }
before=$(disk_sum)
check_fails "unsigned commit refused" "not signed" \
    "$stormctl" install "${base_args[@]}" --disk "$work/disk.img" --source-repo "$work/repo-unsigned"
check_fails "commit signed by an unknown key refused" "not signed by the key|public key" \
    "$stormctl" install "${base_args[@]}" --disk "$work/disk.img" --source-repo "$work/repo-other"
truncate -s 1G "$work/small.img"
check_fails "too small disk refused" "too small" "$stormctl" install "${base_args[@]}" --source-repo "$work/repo" --disk "$work/small.img"
check_fails "missing disk refused" "does not exist" "$stormctl" install "${base_args[@]}" --source-repo "$work/repo" --disk "$work/nope.img"
check_fails "no wipe confirmation refused" "confirm with --wipe" \
    "$stormctl" install --disk "$work/disk.img" --source-repo "$work/repo" --gpg-key "$work/pub.asc" --yes
inspect
check_fails "mounted disk refused" "is mounted" "$stormctl" install "${base_args[@]}" --source-repo "$work/repo" --disk "$loop"
release
check "refusals left the disk untouched" test "$before" = "$(disk_sum)"

# Power cut: killed after each phase, the disk has no bootloader (no GRUB in the MBR, no EFI binary)
# until the last phase; a re-run then completes.
for phase in partition format pull deploy configure; do
    STORMNODE_INSTALL_TEST_KILL_AFTER=$phase "$stormctl" install "${install_args[@]}" >"$work/kill.out" 2>&1
    rc=$?
    checks=$((checks + 1))
    if [ $rc -ne 137 ]; then
        echo "FAILED: kill after $phase: exit $rc"; failures=$((failures + 1)); continue
    fi
    # A killed process leaves its mounts and loop device behind (a power cut would not): a re-run
    # must refuse the disk while they are there.
    if [ "$phase" = deploy ]; then
        check_fails "the disk image of a killed install with its mounts left is in use" "is in use" \
            "$stormctl" install "${install_args[@]}"
    fi
    awk '$2 ~ "^/tmp/stormnode-install[.]" {print $2}' /proc/mounts | sort -r | xargs -r -n1 umount
    for l in $(losetup -j "$work/disk.img" -O NAME -n); do partx -d "$l" 2>/dev/null; losetup -d "$l"; done
    if dd if="$work/disk.img" bs=440 count=1 2>/dev/null | grep -aq GRUB; then
        echo "FAILED: killed after $phase, the MBR has GRUB's boot code"; failures=$((failures + 1))
    elif MTOOLS_SKIP_CHECK=1 mdir -i "$work/disk.img@@2M" ::/EFI/BOOT 2>/dev/null | grep -q BOOTX64; then
        echo "FAILED: killed after $phase, the ESP has BOOTX64.EFI"; failures=$((failures + 1))
    else
        echo "ok: killed after $phase: nothing bootable on the disk"
    fi
done
# The re-run goes the way storm-install.service runs it: mode and answer file from the kernel command line.
echo "console=ttyS0,115200 stormnode.install=unattended stormnode.answers=$work/answers.yaml" >"$work/cmdline-unattended"
check_fails "from the kernel command line, a failure is shown on the console" "^stormnode-install: failed: .*not signed" \
    "$stormctl" install --from-kernel-cmdline --cmdline-file "$work/cmdline-unattended" --yes --disk "$work/disk.img" \
    --source-repo "$work/repo-other" --gpg-key "$work/pub.asc"
check "re-run after the kills completes (from the kernel command line)" \
    "$stormctl" install --from-kernel-cmdline --cmdline-file "$work/cmdline-unattended" --yes --disk "$work/disk.img" \
    --source-repo "$work/repo" --gpg-key "$work/pub.asc"
cp "$work/check.out" "$work/unattended.out"
check "the unattended run printed the done line" grep -qx "stormnode-install: phase done" "$work/unattended.out"
inspect
check "re-run: one deployment, a grub.cfg, BOOTX64.EFI" bash -c "[ \"\$(ls '$work/mnt/ostree/deploy/stormnode/deploy' | grep -c '\\.0\$')\" = 1 ] &&
    [ -f '$work/mnt/boot/grub/grub.cfg' ] && MTOOLS_SKIP_CHECK=1 mdir -i '${loop}p2' ::/EFI/BOOT | grep -q BOOTX64"
release

echo "$((checks - failures)) passed, $failures failed"
[ $failures -eq 0 ]
