# scripts/deps.sh -- sourced by ./test and ./demo: install what zonedist needs
# from Debian, quietly, skipping what is present; `apt-get update` only when
# something is missing.
ZD_PACKAGES="meson ninja-build pkg-config gcc libc6-dev clang libclang-rt-14-dev
 libpq-dev libldns-dev libssl-dev libevent-dev libyaml-dev libcmocka-dev libjansson-dev
 libcurl4-openssl-dev
 postgresql-15 postgresql-client-15 softhsm2 opensc libp11-kit-dev
 bind9 bind9-utils bind9-dnsutils nsd knot knot-dnsutils knot-dnssecutils ldnsutils unbound faketime libengine-pkcs11-openssl
 curl python3 python3-pytest python3-dnspython python3-psycopg2 python3-cryptography
 python3-prometheus-client chromium"

zd_ensure_packages() {
  local missing=""
  for p in $ZD_PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
  done
  [ -z "$missing" ] && return 0
  if [ "$(id -u)" != 0 ]; then
    echo "missing Debian packages:$missing (run as root, or install them)" >&2
    return 1
  fi
  echo "installing:$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null || return 1
  # Debian's packages must not start their own daemons (bind9, nsd, knot,
  # unbound) on this machine: the tests start their own.
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  apt-get install -y -qq --no-install-recommends $missing >/dev/null
  local rc=$?
  rm -f /usr/sbin/policy-rc.d
  return $rc
}

# zd_build DIR [meson options...]: configure once, then build.
zd_build() {
  local dir=$1; shift
  if [ ! -f "$dir/build.ninja" ]; then
    meson setup "$dir" "$@" >"$dir.setup.log" 2>&1 || { cat "$dir.setup.log" >&2; return 1; }
  fi
  ninja -C "$dir" >"$dir.ninja.log" 2>&1 || { tail -50 "$dir.ninja.log" >&2; return 1; }
}
