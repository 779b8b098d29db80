# Shell helpers the scripts share: say, as_root, step.
# SAY_PREFIX names the script in its messages.

say() { printf '%s: %s\n' "${SAY_PREFIX:-mtlsconform}" "$*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# step DESCRIPTION COMMAND...: runs the command with its output kept in a
# log, a line when it starts, one every 15 s while it runs, one when it
# ends; its log is shown when it fails. The log is in STEP_LOGS when set
# (a folder the caller removes, also when interrupted), else in TMPDIR.
step() {
  local desc=$1
  shift
  local log start pid rc=0
  log=$(mktemp "${STEP_LOGS:-${TMPDIR:-/tmp}}/mtlsconform-step.XXXXXX")
  start=$(date +%s)
  say "$desc ..."
  "$@" >"$log" 2>&1 &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    for _ in $(seq 1 150); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && say "  still $desc ($(($(date +%s) - start)) s)"
  done
  wait "$pid" || rc=$?
  if [ "$rc" -ne 0 ]; then
    say "$desc failed (exit $rc):"
    tail -n 30 "$log" >&2
    rm -f "$log"
    return "$rc"
  fi
  rm -f "$log"
  say "  done in $(($(date +%s) - start)) s"
}
