# Sourced by the bench-* scripts: what every benchmark shares.
#
# --smoke (any benchmark): the debug build, tiny sizes, one short round, no verdict. scripts/test runs each benchmark
# this way, so that none can rot unseen; its figures measure nothing.
smoke=0
bench_args=()
for arg in "$@"; do
  if [ "$arg" = --smoke ]; then smoke=1; else bench_args+=("$arg"); fi
done

# apt_install PACKAGE...: installs those missing (no daemon is started).
apt_install() {
  local missing=()
  for package in "$@"; do command -v "$package" >/dev/null 2>&1 || missing+=("$package"); done
  [ ${#missing[@]} -eq 0 ] && return
  [ -f /usr/sbin/policy-rc.d ] || { printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; }
  apt-get -o DPkg::Lock::Timeout=300 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${missing[@]}"
}

# Sets $binary: the release build (the debug build with --smoke).
build_gateway() {
  local configuration=(-c release)
  [ "$smoke" = 1 ] && configuration=()
  swift build "${configuration[@]}" --product kubin-gateway >&2
  binary=$(swift build "${configuration[@]}" --show-bin-path)/kubin-gateway
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# verdict TEXT: prints TEXT (a target met or not), or, with --smoke, that no target is judged.
verdict() {
  if [ "$smoke" = 1 ]; then echo "smoke run: the figures above measure nothing; no target is judged"; else echo "$1"; fi
}
