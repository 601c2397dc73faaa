# scripts/lib.sh — sourced by the scripts in scripts/ (not run): named steps and a failure
# message for every exit under `set -e`, so that no script ends silently.
#
#   source "$(dirname "$0")/lib.sh"
#   step "building (Release; ~2 min on 2 cores)"      # announced on stderr, with its wall time
#   hint "install it with: bash scripts/deps.sh"       # what to do if the current step fails
#   die "message" ["what to do"]                       # a failure that is not a failed command
#   finish                                             # prints the last step's wall time
#
# On an unhandled failing command (ERR under set -e), prints the script, the step, the command,
# its exit status and the step's hint, then exits with the command's status.
set -Eeuo pipefail
PI0_SCRIPT=${PI0_SCRIPT:-$(basename "$0")}
PI0_STEP="starting"
PI0_HINT=""
PI0_STEP_T0=$SECONDS
PI0_PID=$BASHPID
_pi0_step_done() {
  if [ "$PI0_STEP" != "starting" ]; then
    echo "${PI0_SCRIPT%.sh}: took $((SECONDS - PI0_STEP_T0)) s: $PI0_STEP" >&2
  fi
}
step() {
  _pi0_step_done
  PI0_STEP=$1
  PI0_HINT=${2:-}
  PI0_STEP_T0=$SECONDS
  echo "${PI0_SCRIPT%.sh}: $PI0_STEP ..." >&2
}
hint() { PI0_HINT=$1; }
finish() { _pi0_step_done; PI0_STEP="finishing"; }
die() {
  echo "${PI0_SCRIPT%.sh}: FAILED at step '$PI0_STEP': $1" >&2
  [ -z "${2:-}" ] || echo "${PI0_SCRIPT%.sh}: what to do: $2" >&2
  exit 1
}
_pi0_on_err() {
  local rc=$1 line=$2 cmd=$3
  trap - ERR
  # In a subshell ($(...), a pipeline part) the script itself reports it, once.
  [ "$BASHPID" = "$PI0_PID" ] || exit "$rc"
  echo "${PI0_SCRIPT%.sh}: FAILED at step '$PI0_STEP' (exit $rc, line $line: $cmd)" >&2
  [ -z "$PI0_HINT" ] || echo "${PI0_SCRIPT%.sh}: what to do: $PI0_HINT" >&2
  exit "$rc"
}
trap '_pi0_on_err $? $LINENO "$BASH_COMMAND"' ERR
