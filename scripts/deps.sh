# Sourced by run-demo.sh and run-tests.sh: install the Debian 12 packages the
# build, the tests and the demo need, only those that are missing.
SC_PACKAGES=(
  build-essential autoconf automake libtool pkg-config
  libpam0g-dev libssl-dev libp11-kit-dev libpcsclite-dev libgtest-dev nlohmann-json3-dev
  p11-kit softhsm2 opensc opensc-pkcs11 gnutls-bin openssl
  libnss-wrapper libpam-wrapper pamtester mandoc
  clang libclang-rt-14-dev
  pcscd vsmartcard-vpcd faketime
  libldap-dev slapd ldap-utils
  iproute2 util-linux
)

sc_install_missing() {
  local missing=() p
  for p in "${SC_PACKAGES[@]}" "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
      echo "missing packages: ${missing[*]} (run as root to install them)" >&2
      return 1
    fi
    echo "==> installing: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

# sc_configure DIR ARGS...: out-of-tree build in DIR.
sc_configure() {
  local dir=$1
  shift
  [ -x "$SC_TOP/configure" ] || (cd "$SC_TOP" && autoreconf -fi >/dev/null 2>&1)
  mkdir -p "$dir"
  (cd "$dir" && "$SC_TOP/configure" --sysconfdir=/etc "$@" >configure.out 2>&1) || {
    tail -n 30 "$dir/configure.out"
    return 1
  }
}

# sc_build [TARGETS...]: the shared out-of-tree build in _build (configured on
# first use), making the given targets besides "all"; output in _build/make.out.
sc_build() {
  cd "$SC_TOP"
  [ -x configure ] || autoreconf -fi >/dev/null 2>&1
  [ -f _build/Makefile ] || sc_configure _build
  make -C _build -j"$(nproc)" all "$@" >_build/make.out 2>&1 || { tail -n 30 _build/make.out; return 1; }
}
