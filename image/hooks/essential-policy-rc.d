#!/bin/sh
# mmdebstrap --essential-hook: before the packages are installed, make sure no maintainer script can
# start a service (mmdebstrap installs this policy-rc.d itself and removes it at the end; if a future
# mmdebstrap stops doing so, this puts it in place — an image build never starts a daemon).
set -eu
root="$1"
if ! [ -x "$root/usr/sbin/policy-rc.d" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$root/usr/sbin/policy-rc.d"
    chmod 0755 "$root/usr/sbin/policy-rc.d"
fi
