#!/usr/bin/env bash
# ollamax build entry point.
#   ./build.sh deps    install Debian packages and the npm test clients
#   ./build.sh         build (Release) into build/
#   ./build.sh test    deps + build + every test (ctest) + ASan/UBSan unit tests
#   ./build.sh run     deps + build + `ollamax serve` in the foreground
#   ./build.sh asan    ASan/UBSan build of everything into build-asan/
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$(pwd)
JOBS=${JOBS:-$(nproc)}

PKGS=(build-essential cmake pkg-config git curl ca-certificates iproute2
      libuv1-dev libtorrent-rasterbar-dev libraft-dev librocksdb-dev libmbedtls-dev
      libssl-dev libhttp-parser-dev libcurl4-openssl-dev libjansson-dev libcmocka-dev
      python3 python3-numpy)

sudo_() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

deps() {
    local missing=()
    for p in "${PKGS[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
        missing+=(nodejs npm)
    fi
    if [ ${#missing[@]} -gt 0 ]; then
        echo "build.sh: installing ${missing[*]}"
        sudo_ apt-get update -q
        sudo_ env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
    fi
    local d
    for d in tests/clients tests/tokenizer; do
        [ -f "$d/package-lock.json" ] || continue
        if [ ! -d "$d/node_modules" ] || [ "$d/package-lock.json" -nt "$d/node_modules/.package-lock.json" ]; then
            (cd "$d" && npm ci --no-audit --no-fund --loglevel=error)
        fi
    done
}

build() {
    local dir=${1:-build} type=${2:-Release}; shift 2 || true
    cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE="$type" -DOX_WERROR=ON "$@" >/dev/null
    cmake --build "$dir" -j "$JOBS"
}

cmd=${1:-build}
case "$cmd" in
deps) deps ;;
build) build build Release ;;
asan) build build-asan Debug -DOX_SANITIZE=ON ;;
test)
    deps
    build build Release
    (cd build && ctest --output-on-failure -j "$JOBS" --timeout 900)
    build build-asan Debug -DOX_SANITIZE=ON
    (cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
        UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        ctest --output-on-failure -j "$JOBS" -L unit --timeout 900)
    echo "build.sh: all tests passed"
    ;;
run)
    deps
    build build Release
    shift
    exec ./build/ollamax serve "$@"
    ;;
*)
    echo "usage: $0 [deps|build|test|run|asan]" >&2
    exit 2
    ;;
esac
