#!/usr/bin/env bash
# Release builds: static binaries for linux/amd64, linux/arm64 and
# windows/amd64 with the version and commit stamped into `relaywatch
# version`, .deb and .rpm for both Linux architectures (nfpm, deploy/package),
# the container image as an OCI tarball (deploy/image), and SHA256SUMS.
#
#   deploy/release.sh [VERSION] [OUTDIR]     # VERSION default: git describe; OUTDIR: dist/ under $TMPDIR
set -euo pipefail
cd "$(dirname "$0")/.."
version=${1:-$(git describe --tags --always --dirty 2>/dev/null || echo v0.0.0-dev)}
out=${2:-${TMPDIR:-/tmp}/relaywatch-dist}
commit=$(git rev-parse HEAD 2>/dev/null || echo unknown)
mkdir -p "$out"
ldflags="-s -w -X main.version=$version -X main.commit=$commit"
for target in linux/amd64 linux/arm64 windows/amd64; do
  os=${target%/*} arch=${target#*/}
  bin="$out/relaywatch-$os-$arch"; [ "$os" = windows ] && bin="$bin.exe"
  CGO_ENABLED=0 GOOS=$os GOARCH=$arch go build -trimpath -ldflags "$ldflags" -o "$bin" ./cmd/relaywatch
  echo "built $bin"
  if [ "$os" = linux ]; then
    go run ./deploy/package -binary "$bin" -arch "$arch" -version "$version" -out "$out"
    go run ./deploy/image -binary "$bin" -arch "$arch" -version "$version" -out "$out/relaywatch-image-$arch.tar"
  fi
done
(cd "$out" && sha256sum relaywatch* > SHA256SUMS)
echo "release $version ($commit) in $out:"
ls -l "$out"
