# Sourced by the project's shell scripts (run.sh, tests/*.sh, tests/xen/*.sh).
#
# Under `set -e`, a command that fails ends the script; this makes it end with one line
# that names the script, the step it was in, the command and its exit status, instead of
# a silent non-zero exit. A script names its steps with `hy_step "what it does"`.
HY_STEP="start"
hy_step() { HY_STEP="$*"; }
hy_fail_trap() {
    local rc=$? cmd=$1 line=$2
    # Bash runs ERR traps under `set +e` too; only a failure that ends the script counts.
    [[ $- == *e* ]] || return 0
    echo "$(basename "$0"): FAILED in step '$HY_STEP' (exit $rc): line $line: $cmd" >&2
    exit "$rc"
}
set -E
trap 'hy_fail_trap "$BASH_COMMAND" "$LINENO"' ERR
