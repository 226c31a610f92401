#!/usr/bin/env bash
# rootfs.sh BINARY DIR: a root filesystem for deploy/Dockerfile.prebuilt:
# the binary at /usr/local/bin/registry, the shared libraries it links (as
# ldd lists them, at the same paths), the CA bundle (pull-through caches of
# https upstreams verify them), an empty /var/lib/registry and /tmp.
set -euo pipefail
bin="$1" dir="$2"
mkdir -p "$dir/usr/local/bin" "$dir/var/lib/registry" "$dir/tmp"
cp "$bin" "$dir/usr/local/bin/registry"
ldd "$bin" | grep -oE '/[^ ]+' | while read -r lib; do
    mkdir -p "$dir$(dirname "$lib")"
    cp -L "$lib" "$dir$lib"
done
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
    mkdir -p "$dir/etc/ssl/certs"
    cp -L /etc/ssl/certs/ca-certificates.crt "$dir/etc/ssl/certs/"
fi
cp "$(dirname "${BASH_SOURCE[0]}")/Dockerfile.prebuilt" "$dir/Dockerfile"
printf "Dockerfile\n.dockerignore\n" >"$dir/.dockerignore"
echo "rootfs in $dir: $(du -sh "$dir" | cut -f1)"
