#!/usr/bin/env bash
# tests/fuzz/run.sh BUILD [SECONDS] -- run every libFuzzer target of BUILD
# (configured with -Dfuzz=true) for SECONDS seconds each (default 15), from a
# copy of its seed corpus tests/fuzz/corpus/<target> (the repository is never
# written), as many at once as there are CPUs.  Writes build-logs/fuzz.xml,
# one JUnit testcase per target: a failure when libFuzzer found a crash, a
# leak, a timeout or an out-of-memory, naming the input it kept (under
# build-logs/fuzz/<target>/) with the first lines of the report.  Each
# target's whole output is in build-logs/fuzz/<target>.log.
#   reproduce: BUILD/tests/fuzz/<target> build-logs/fuzz/<target>/crash-...
# ZD_FUZZ_PER_INPUT_S (default 25): libFuzzer's time limit for one input.
# Exits non-zero when a target failed or none was found.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:?usage: tests/fuzz/run.sh BUILD [SECONDS]}
SECS=${2:-15}
case $BUILD in /*) ;; *) BUILD=$(pwd)/$BUILD ;; esac
case $SECS in '' | *[!0-9]*) echo "run.sh: SECONDS must be a number" >&2; exit 2 ;; esac
LOGS=$ROOT/build-logs/fuzz
XML=$ROOT/build-logs/fuzz.xml
JOBS=$(nproc 2>/dev/null || echo 1)
# libFuzzer's own limit per input; dns_query_fuzz reports a hung server
# itself after 5 s, with a better message.
PER_INPUT_S=${ZD_FUZZ_PER_INPUT_S:-25}
case $PER_INPUT_S in '' | *[!0-9]*) echo "run.sh: bad ZD_FUZZ_PER_INPUT_S" >&2; exit 2 ;; esac
# The whole run of one target: a target that does not stop is a failure too.
WALL_S=$((SECS + 120))

TMP=$(mktemp -d "${TMPDIR:-/tmp}/zd-fuzz.XXXXXX") || exit 2
trap 'rm -rf "$TMP"' EXIT
mkdir -p "$LOGS"

targets=()
for t in "$BUILD"/tests/fuzz/*_fuzz; do
  [ -x "$t" ] && targets+=("$(basename "$t")")
done

xml_escape() {
  tr -cd '\11\12\15\40-\176' | sed -e 's/&/\&amp;/g' -e 's/</\&lt;/g' -e 's/>/\&gt;/g' \
    -e 's/"/\&quot;/g'
}

# run_one TARGET: fuzz it; leave its verdict in $TMP/TARGET.result.
run_one() {
  local t=$1 log=$LOGS/$1.log art=$LOGS/$1 corpus=$TMP/$1.corpus start end rc
  rm -rf "$art" && mkdir -p "$art" "$corpus"
  if [ -d "$ROOT/tests/fuzz/corpus/$t" ]; then
    cp -R "$ROOT/tests/fuzz/corpus/$t/." "$corpus/"
  fi
  start=$(date +%s.%N)
  timeout -k 10 "$WALL_S" "$BUILD/tests/fuzz/$t" -max_total_time="$SECS" \
    -timeout="$PER_INPUT_S" -print_final_stats=1 -artifact_prefix="$art/" "$corpus" \
    </dev/null >"$log" 2>&1
  rc=$?
  end=$(date +%s.%N)
  {
    echo "rc=$rc"
    echo "time=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')"
    echo "runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
    echo "speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)"
    echo "cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | cut -d' ' -f2)"
  } >"$TMP/$t.result"
}

# At most JOBS targets at a time.
for t in "${targets[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do
    wait -n
  done
  run_one "$t" &
done
wait

failed=0
cases=""
for t in "${targets[@]}"; do
  rc=1 time=0 runs="" speed="" cov=""
  [ -f "$TMP/$t.result" ] && . "$TMP/$t.result"
  log=$LOGS/$t.log
  line="$t: ${runs:-?} runs, ${speed:-?} exec/s, cov ${cov:-?}, ${time}s"
  body="<system-out>$(echo "$line" | xml_escape)</system-out>"
  if [ "$rc" != 0 ]; then
    failed=$((failed + 1))
    kept=$(ls -1 "$LOGS/$t"/crash-* "$LOGS/$t"/leak-* "$LOGS/$t"/timeout-* "$LOGS/$t"/oom-* \
      2>/dev/null | head -1)
    if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
      why="did not stop within ${WALL_S}s"
    elif [ -n "$kept" ]; then
      why="input kept in ${kept#"$ROOT"/}"
    else
      why="exit status $rc, no input kept"
    fi
    # The report: from the harness's or the sanitizer's first line on.
    report=$(grep -m1 -n -E '_fuzz: |^fuzz: |ERROR|runtime error|Assertion' "$log" |
      cut -d: -f1)
    report="$(tail -n +"${report:-1}" "$log" | head -24)
$(grep -m1 '^SUMMARY' "$log")"
    echo "$t: FAILED ($why); log: ${log#"$ROOT"/}"
    body="<failure message=\"$(echo "$why" | xml_escape)\">$(printf '%s\n\n%s\n' "$why" \
      "$report" | xml_escape)</failure>$body"
  else
    echo "$line"
  fi
  cases="$cases<testcase classname=\"fuzz\" name=\"$t\" time=\"$time\">$body</testcase>
"
done
if [ "${#targets[@]}" = 0 ]; then
  failed=1
  echo "run.sh: no fuzz target in $BUILD/tests/fuzz (configure with -Dfuzz=true)"
  cases="<testcase classname=\"fuzz\" name=\"build\"><failure message=\"no fuzz target built\">\
no executable $BUILD/tests/fuzz/*_fuzz</failure></testcase>
"
fi
n=${#targets[@]}
[ "$n" = 0 ] && n=1
{
  echo '<?xml version="1.0" encoding="utf-8"?>'
  echo "<testsuites><testsuite name=\"fuzz\" tests=\"$n\" failures=\"$failed\" errors=\"0\" skipped=\"0\">"
  printf '%s' "$cases"
  echo '</testsuite></testsuites>'
} >"$XML"
[ "$failed" = 0 ]
