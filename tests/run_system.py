"""Run the system tests in a few pytest processes side by side (./test).

Every test starts its own PostgreSQL, token, zonedistd and secondaries on
ports the kernel picks, so tests do not share anything but the machine.
The tests pytest collects (with the caller's -k and other arguments) are
dealt to the shards longest first, each to the shard with the least work
so far, by the durations of a recorded run (tests/system/durations.json;
a test not in it counts as the median); a shard runs its tests in the
collected order, each shard writes its own junit file
(build-logs/system-N.xml) and log (build-logs/system-N.txt), and the last
lines of each log are printed at the end.

    run_system.py JOBS LOGDIR [PYTEST ARGS...]

Exit status: 0 when every shard passed.  The junit files are for
tests/summarize.py; their paths are printed one per line after "junit:"."""

import json
import os
import subprocess
import sys

PYTEST = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider"]


def collect(args):
    p = subprocess.run(PYTEST + ["-q", "--collect-only"] + args + ["tests/system"],
                       capture_output=True, text=True)
    ids = [l.strip() for l in p.stdout.splitlines() if "::" in l and not l.startswith(" ")]
    return p, ids


def deal(ids, jobs):
    """ids split into jobs shards of about equal recorded duration."""
    try:
        with open(os.path.join(os.path.dirname(__file__), "system", "durations.json")) as f:
            known = {k: float(v) for k, v in json.load(f).items()}
    except (OSError, ValueError, AttributeError):
        known = {}
    times = sorted(known.values())
    median = times[len(times) // 2] if times else 1.0
    cost = {t: known.get(t, median) for t in ids}
    shards, load = [[] for _ in range(jobs)], [0.0] * jobs
    for t in sorted(ids, key=lambda t: -cost[t]):
        i = load.index(min(load))
        shards[i].append(t)
        load[i] += cost[t]
    order = {t: n for n, t in enumerate(ids)}
    return [sorted(s, key=order.get) for s in shards if s]


def main():
    jobs, logdir, args = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
    p, ids = collect(args)
    if p.returncode not in (0, 5) or not ids:
        # nothing to deal (or collection failed): one plain run reports it
        jobs = 1
    jobs = max(1, min(jobs, len(ids) or 1))
    shards = deal(ids, jobs) if jobs > 1 else [None]
    procs = []
    for n, shard in enumerate(shards, 1):
        xml = os.path.join(logdir, f"system-{n}.xml")
        log = open(os.path.join(logdir, f"system-{n}.txt"), "w")
        argv = PYTEST + ["-q", f"--junitxml={xml}", "-o", "junit_family=xunit2"] + args + \
            (shard or ["tests/system"])
        procs.append((n, xml, log, subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                                    stdin=subprocess.DEVNULL)))
    rc = 0
    for n, xml, log, proc in procs:
        rc |= proc.wait()
        log.close()
    for n, xml, _log, _proc in procs:
        with open(os.path.join(logdir, f"system-{n}.txt"), errors="replace") as f:
            lines = f.read().splitlines()
        print(f"-- system tests, shard {n} of {len(procs)}")
        print("\n".join(lines[-30:]))
    for _n, xml, _log, _proc in procs:
        print(f"junit: {xml}")
    return 1 if rc else 0


if __name__ == "__main__":
    sys.exit(main())
