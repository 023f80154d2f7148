#!/usr/bin/env bash
# Builds the solution once, starts the services the integration tests need (RabbitMQ, PostgreSQL,
# s3rver, all on 127.0.0.1) unless the caller already provides them, runs every test project, stops
# what it started, and ends with one line: "N passed, N failed, N skipped".
#
#   ./scripts/test.sh                         everything
#   ./scripts/test.sh --filter "FullyQualifiedName~Storage"
#   ./scripts/test.sh --project tests/NvDinoPipeline.Storage.Tests   only these projects (repeatable)
#   ./scripts/test.sh --no-services           start no service (integration tests then need
#                                             NVDINO_TEST_* from the caller)
#
# Services are reused when the caller exports their variables (NVDINO_TEST_RABBITMQ,
# NVDINO_TEST_POSTGRES, NVDINO_TEST_S3_URL) or when they are already running; only the ones this
# script started are stopped at the end. TRX results go to artifacts/test-results (or
# NVDINO_TEST_RESULTS_DIR).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root="$PWD"

filter=""
services=1
targets=()
configuration=Release
results_dir="${NVDINO_TEST_RESULTS_DIR:-$root/artifacts/test-results}"
# A hung test fails after this long instead of eating the whole CI budget.
hang_timeout="${NVDINO_TEST_HANG_TIMEOUT:-10m}"
session_timeout_ms="${NVDINO_TEST_SESSION_TIMEOUT_MS:-3600000}"

usage() { sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --filter) [[ $# -ge 2 ]] || { echo "test.sh: --filter needs an expression" >&2; exit 2; }
      filter="$2"; shift 2 ;;
    --filter=*) filter="${1#--filter=}"; shift ;;
    --project) [[ $# -ge 2 && -e $2 ]] || { echo "test.sh: --project needs an existing project file or folder" >&2; exit 2; }
      targets+=("$2"); shift 2 ;;
    --no-services) services=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "test.sh: unknown option '$1'" >&2; usage >&2; exit 2 ;;
  esac
done

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
export MSBUILDDISABLENODEREUSE=1

# What to build and test: the solution once it exists, else every project under tests/.
if [[ ${#targets[@]} -gt 0 ]]; then
  :
elif [[ -f NvDinoPipeline.sln ]]; then
  targets=(NvDinoPipeline.sln)
else
  while IFS= read -r project; do targets+=("$project"); done \
    < <(find tests -mindepth 2 -maxdepth 2 -name '*.Tests.csproj' | sort)
  [[ ${#targets[@]} -gt 0 ]] || { echo "test.sh: no NvDinoPipeline.sln and no tests/*/*.Tests.csproj" >&2; exit 1; }
fi

started=()
stop_services() {
  local i
  for ((i = ${#started[@]} - 1; i >= 0; i--)); do
    "scripts/services/${started[i]}.sh" stop || true
  done
  started=()
}
trap stop_services EXIT

# Starts scripts/services/<name>.sh unless <variable> is already set, then exports its variables.
use_service() {
  local name="$1" variable="$2" script="scripts/services/$1.sh"
  if [[ -n "${!variable:-}" ]]; then
    echo "test.sh: $name from the caller's $variable" >&2
    return 0
  fi
  [[ -x $script ]] || { echo "test.sh: $script is missing" >&2; exit 1; }
  local t0=$SECONDS
  if "$script" status >/dev/null 2>&1; then
    echo "test.sh: $name already running; reusing it and leaving it running" >&2
  else
    started+=("$name")
    "$script" start
    echo "test.sh: $name started in $((SECONDS - t0)) s" >&2
  fi
  eval "$("$script" env)"
}

t_build=$SECONDS
for target in "${targets[@]}"; do
  echo "test.sh: dotnet build $target -c $configuration" >&2
  dotnet build "$target" -c "$configuration" -nr:false -v:q -nologo -clp:ErrorsOnly \
    || { echo "test.sh: build of $target failed; no test ran" >&2; exit 1; }
done
t_build=$((SECONDS - t_build))

# Debian packages the tests use: Fashion-MNIST (/usr/share/datasets/fashion-mnist) and the onnx
# reference implementation, whose checker validates every exported model; libjpeg-turbo, which
# the staging worker decodes JPEGs with when it is installed; pika, the AMQP client of the Python example;
# chromium, the browser the dashboard tests drive (Playwright is given its path: it downloads no browser).
test_packages=(dataset-fashion-mnist python3-onnx python3-pika docker-compose libturbojpeg0 chromium)
ensure_test_packages() {
  local missing=() package
  for package in "${test_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
  done
  [[ ${#missing[@]} -eq 0 ]] && return 0
  if [[ $(id -u) -ne 0 ]]; then
    echo "test.sh: tests read files of Debian packages that are missing: sudo apt-get install -y ${missing[*]}" >&2
    return 0
  fi
  echo "test.sh: installing ${missing[*]}" >&2
  ls /var/lib/apt/lists/*_Packages >/dev/null 2>&1 || apt-get update -q >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=300 "${missing[@]}" >&2 \
    || { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=300 "${missing[@]}" >&2; }
}

t_services=$SECONDS
ensure_test_packages
# The AsyncAPI parser the contract test validates docs/asyncapi.yaml with (npm, under .tools/ like s3rver).
scripts/tools/asyncapi.sh install || echo "test.sh: @asyncapi/parser could not be installed; the AsyncAPI document test will fail" >&2
if [[ $services -eq 1 ]]; then
  use_service rabbitmq NVDINO_TEST_RABBITMQ
  use_service postgres NVDINO_TEST_POSTGRES
  use_service s3rver NVDINO_TEST_S3_URL
fi
t_services=$((SECONDS - t_services))

rm -rf "$results_dir"
mkdir -p "$results_dir"
test_args=(-c "$configuration" --no-build -nr:false --nologo
  --logger trx --results-directory "$results_dir"
  --blame-hang-timeout "$hang_timeout" --blame-hang-dump-type none)
[[ -n $filter ]] && test_args+=(--filter "$filter")

t_test=$SECONDS
test_status=0
for target in "${targets[@]}"; do
  dotnet test "$target" "${test_args[@]}" -- RunConfiguration.TestSessionTimeout="$session_timeout_ms" || test_status=$?
done
t_test=$((SECONDS - t_test))

stop_services

# The closing line counts every test case in every TRX file. A test run that was aborted (crashed
# or hung test host) counts as one failure even when none of its finished tests failed.
python=/usr/bin/python3
[[ -x $python ]] || python=python3
summary=$("$python" - "$results_dir" <<'EOF'
import glob, sys, xml.etree.ElementTree as ET
ns = "{http://microsoft.com/schemas/VisualStudio/TeamTest/2010}"
passed = failed = skipped = 0
for path in sorted(glob.glob(sys.argv[1] + "/**/*.trx", recursive=True)):
    root = ET.parse(path).getroot()
    run_failed = 0
    for result in root.iter(ns + "UnitTestResult"):
        outcome = result.get("outcome", "")
        if outcome == "Passed":
            passed += 1
        elif outcome in ("NotExecuted", "Inconclusive", "Pending", "Disconnected", "Warning"):
            skipped += 1
        else:
            run_failed += 1
    summary = root.find(ns + "ResultSummary")
    if run_failed == 0 and summary is not None and summary.get("outcome") not in ("Completed", "Passed", "Warning"):
        run_failed = 1
        for info in summary.iter(ns + "RunInfo"):
            if info.get("outcome") == "Error":
                print(f"test.sh: {path}: {info.findtext(ns + 'Text', '').strip()}", file=sys.stderr)
    failed += run_failed
print(passed, failed, skipped)
EOF
)
read -r passed failed skipped <<<"$summary"
# dotnet test failing with no failed result (a test host that never wrote results) is still a failure.
[[ $test_status -eq 0 || $failed -gt 0 ]] || failed=1

echo "test.sh: build ${t_build} s, services ${t_services} s, tests ${t_test} s; TRX in $results_dir" >&2
[[ $((passed + failed)) -gt 0 ]] || echo "test.sh: no test ran" >&2
[[ $test_status -eq 0 ]] || echo "test.sh: dotnet test exited with status $test_status" >&2
echo "${passed} passed, ${failed} failed, ${skipped} skipped"

[[ $test_status -eq 0 && $failed -eq 0 && $((passed + failed)) -gt 0 ]]
