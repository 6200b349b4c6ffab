# Helpers for scripts/test and scripts/provision/*.sh. Sourced, not run.

note() { printf '==> %s\n' "$*" >&2; }

# apt_install PACKAGE...: installs the Debian packages that are not installed yet, running
# `apt-get update` at most once per test run.
apt_install() {
    local missing=()
    for package in "$@"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
            || missing+=("$package")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    if [ -z "${FAULTLINE_APT_UPDATED:-}" ]; then
        note "apt-get update"
        $sudo apt-get update -qq
        export FAULTLINE_APT_UPDATED=1
    fi
    note "apt-get install ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
