#!/usr/bin/env bash
# Builds perf/go (the load benchmark's Go row) against the real go-persist and
# prints the binary's path. Toolchain and sources come from
# /work/shared/goread/setup.sh (its README says how: MIRROR_ROOT or *_GIT);
# everything it builds stays under /tmp.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SETUP=${GOREAD_SETUP:-/work/shared/goread/setup.sh}
bash "$SETUP" >/dev/null
GO=${GO:-/tmp/goread/toolchain/go/bin/go}
[ -x "$GO" ] || GO=$(command -v go)
export GOTOOLCHAIN=local GOPATH=/tmp/goread/gopath GOCACHE=/tmp/goread/gocache GOFLAGS=-modcacherw
export GOSUMDB=off GOTELEMETRY=off GOPROXY=off
bin=/tmp/persist-gobench/gobench
mkdir -p "$(dirname "$bin")"
(cd "$HERE" && "$GO" build -trimpath -o "$bin" .) >&2
echo "$bin"
