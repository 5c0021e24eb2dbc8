#!/bin/sh
# The check a pull request (GitHub) or merge request (GitLab) on a repository of Roster manifests
# runs: `roster test` on the change, then `roster plan` of the change against its base. It writes
# the comment to post (markdown) and exits with the check's result; the CI definitions beside it
# (github/roster-plan.yaml, gitlab/roster-plan.gitlab-ci.yml) call it, then post the comment.
#
# No cluster is needed: the base is the target branch's tree (checked out with git worktree) taken
# as the operator leaves it once reconciled (`roster plan --base`).
#
# Settings (environment):
#   ROSTER_BASE_REF  the commit the change is compared with: the base of the pull request (required)
#   ROSTER_DIR       the directory of manifests, relative to the repository root (default: .)
#   ROSTER_TESTS     the directories `roster test` reads, space-separated (default: ROSTER_DIR;
#                    empty: no tests are run)
#   ROSTER_COMMENT   where the comment is written (default: roster-comment.md)
#   ROSTER_JUNIT     if set, `roster test -o junit` is written there too (CI test reports)
#   ROSTER           the roster command (default: roster)
#
# Exit codes: 0 the tests pass and the plan is within the limits; 5 a policy test fails; 3 the
# plan would trip the mass-change brake; 1 error (a command could not run: the comment says which).
# When several hold, the first of 1, 5, 3.
set -u

base_ref=${ROSTER_BASE_REF:?ROSTER_BASE_REF: the commit to compare with}
dir=${ROSTER_DIR:-.}
tests=${ROSTER_TESTS-$dir}
comment=${ROSTER_COMMENT:-roster-comment.md}
roster=${ROSTER:-roster}

work=$(mktemp -d)
base="$work/base"
cleanup() {
  git worktree remove --force "$base" >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT

fence='````'
result=0
mkdir -p "$(dirname "$comment")"
: >"$comment"

# Keeps the weightiest exit code so far: error (1) over a test failure (5) over the brake (3).
weight() {
  case $1 in
    1) echo 3 ;;
    5) echo 2 ;;
    3) echo 1 ;;
    *) echo 0 ;;
  esac
}
record() {
  case $1 in
    0) return ;;
    3 | 5) code=$1 ;;
    *) code=1 ;;
  esac
  if [ "$(weight "$code")" -gt "$(weight "$result")" ]; then result=$code; fi
}

# Policy tests first: a plan of a change that breaks a promise made to auditors is still shown.
test_status=0
if [ -n "$tests" ]; then
  # shellcheck disable=SC2086 # $roster and $tests are lists of words
  $roster test $tests >"$work/test.txt" 2>&1 || test_status=$?
  if [ -n "${ROSTER_JUNIT:-}" ]; then
    mkdir -p "$(dirname "$ROSTER_JUNIT")"
    # shellcheck disable=SC2086
    $roster test $tests -o junit >"$ROSTER_JUNIT" 2>/dev/null || true
  fi
  record "$test_status"
fi

plan_status=0
if ! git worktree add --quiet --detach "$base" "$base_ref" 2>"$work/git.txt"; then
  plan_status=1
  printf 'git worktree add %s failed:\n' "$base_ref" >"$work/plan.txt"
  cat "$work/git.txt" >>"$work/plan.txt"
elif [ -d "$base/$dir" ]; then
  $roster plan "$dir" --base "$base/$dir" -o text >"$work/plan.txt" 2>"$work/plan.err" || plan_status=$?
else
  # The change adds the directory: everything in it is new.
  $roster plan "$dir" --no-cluster -o text >"$work/plan.txt" 2>"$work/plan.err" || plan_status=$?
fi
record "$plan_status"

{
  case "$plan_status" in
    0 | 3) cat "$work/plan.txt" ;;
    *)
      printf '## Roster plan\n\n**The plan could not be made** (exit %s):\n\n%s\n' "$plan_status" "$fence"
      cat "$work/plan.txt" "$work/plan.err" 2>/dev/null
      printf '%s\n' "$fence"
      ;;
  esac
  if [ -n "$tests" ]; then
    case "$test_status" in
      0) printf '\n**Policy tests** (`roster test %s`): all pass.\n' "$tests" ;;
      5) printf '\n**Policy tests** (`roster test %s`): **failing**.\n' "$tests" ;;
      *) printf '\n**Policy tests** (`roster test %s`) could not run (exit %s).\n' "$tests" "$test_status" ;;
    esac
    printf '\n<details><summary>roster test output</summary>\n\n%s\n' "$fence"
    cat "$work/test.txt"
    printf '%s\n\n</details>\n' "$fence"
  fi
  case "$result" in
    0) printf '\nThis check passes.\n' ;;
    3) printf '\nThis check fails: the change would trip the mass-change brake. Split it; or, if it is meant, merge it anyway and approve the held deprovisions on the Connector (`kubectl annotate connector NAME roster.dev/approve-deprovisioning=N`).\n' ;;
    5) printf '\nThis check fails: a policy test fails.\n' ;;
    *) printf '\nThis check fails: a command could not run.\n' ;;
  esac
} >"$comment"

exit "$result"
