#!/usr/bin/env python3
"""What `cargo test` ran, from its log: tests per crate (passed, failed,
ignored, filtered out), test binaries that never reported, the backend pairs
each storage test ran on, and the filters in force. Exits 1 if a filter was
set (CI sets none), a test binary did not run, or a storage test ran on fewer
backend pairs than it is about; a green run that tested less fails here.

Usage: test-summary.py CARGO_TEST_LOG EXECUTABLES_JSON
  EXECUTABLES_JSON: `cargo test --workspace --no-run --message-format=json`
"""

import json
import os
import re
import subprocess
import sys
from collections import defaultdict

# Variables that narrow what the tests run or how long they torture.
NARROWING = ["CARGO_TEST_ARGS", "CRASH_ROUNDS", "REGISTRY_TEST_SQLITE_ONLY"]
PAIRS = re.compile(
    r"storage backend pairs: (\S+?)::(\S+) ran (\d+) of (\d+) wanted \(of (\d+)\)"
)
RUNNING = re.compile(r"^\s+Running (.+) \((\S+)\)\s*$")
DOCTESTS = re.compile(r"^\s+Doc-tests (\S+)\s*$")
RESULT = re.compile(
    r"^test result: \w+\. (\d+) passed; (\d+) failed; (\d+) ignored; "
    r"(\d+) measured; (\d+) filtered out"
)


def executables(path):
    """basename -> (package, target name, target kinds, path)."""
    out = {}
    with open(path) as f:
        for line in f:
            try:
                m = json.loads(line)
            except ValueError:
                continue
            exe = m.get("executable")
            test = m.get("profile", {}).get("test")
            if m.get("reason") != "compiler-artifact" or not exe or not test:
                continue
            # "path+file:///w/storage#0.1.0", or "...tests#e2e@0.1.0" when the
            # package's name is not its folder's.
            url, _, version = m["package_id"].partition("#")
            name = version.split("@")[0] if "@" in version else url.rsplit("/", 1)[-1]
            out[os.path.basename(exe)] = (name, m["target"]["name"], m["target"]["kind"], exe)
    return out


def main():
    log_path, exe_path = sys.argv[1], sys.argv[2]
    exes = executables(exe_path)
    problems = []

    per_crate = defaultdict(lambda: [0, 0, 0, 0, 0])  # binaries, passed, failed, ignored, filtered
    reported = set()
    current = reported_key = None
    pairs = {}
    with open(log_path, errors="replace") as f:
        for line in f:
            for m in PAIRS.finditer(line):
                key = f"{m.group(1)}::{m.group(2)}"
                pairs[key] = tuple(int(m.group(i)) for i in (3, 4, 5))
            m = RUNNING.match(line)
            if m:
                base = os.path.basename(m.group(2))
                current = exes.get(base, (base.rsplit("-", 1)[0], "?", [], ""))[0]
                reported_key = base
                continue
            m = DOCTESTS.match(line)
            if m:
                current = m.group(1).replace("_", "-")
                reported_key = "doc:" + current
                continue
            m = RESULT.match(line)
            if m and current is not None:
                c = per_crate[current]
                c[0] += 1
                for i in range(4):
                    c[i + 1] += int(m.group((1, 2, 3, 5)[i]))
                reported.add(reported_key)
                current = None

    print("tests per crate (binaries: passed, failed, ignored, filtered out):")
    total = [0, 0, 0, 0, 0]
    for crate in sorted(per_crate):
        c = per_crate[crate]
        total = [a + b for a, b in zip(total, c)]
        print(f"  {crate:<12} {c[0]:>3} binaries: {c[1]:>4} passed, {c[2]} failed, "
              f"{c[3]} ignored, {c[4]} filtered out")
    print(f"  {'all':<12} {total[0]:>3} binaries: {total[1]:>4} passed, {total[2]} failed, "
          f"{total[3]} ignored, {total[4]} filtered out")
    if total[4]:
        problems.append(f"{total[4]} tests filtered out: a test name filter was given")

    missing = sorted(f"{v[0]} {v[1]} ({os.path.basename(v[3])})"
                     for k, v in exes.items() if k not in reported)
    if missing:
        problems.append("test binaries that reported no result: " + ", ".join(missing))

    # Every storage integration test prints the backend pairs it ran.
    storage = [v for v in exes.values() if v[0] == "storage" and "test" in v[2]]
    listed = []
    for _, target, _, exe in storage:
        out = subprocess.run([exe, "--list", "--format", "terse"], capture_output=True,
                             text=True, check=False).stdout
        listed += [f"{target}::{l[:-len(': test')]}" for l in out.splitlines()
                   if l.endswith(": test")]
    fewer = defaultdict(list)
    short = []
    for key in sorted(listed):
        got = pairs.get(key)
        if got is None:
            short.append(f"{key}: printed no backend pairs (did it run?)")
        elif got[0] != got[1] or got[0] == 0 or got[2] != 4:
            short.append(f"{key}: ran {got[0]} of {got[1]} wanted (of {got[2]})")
        elif got[1] != 4:
            fewer[got[1]].append(key)
    on_all = len(listed) - len(short) - sum(len(v) for v in fewer.values())
    print(f"storage suite: {len(listed)} tests; {on_all} ran on all 4 backend pairs"
          + "".join(f"; {len(v)} on the {n} they are about ({', '.join(v)})"
                    for n, v in sorted(fewer.items())))
    if not listed:
        problems.append("no storage integration test was listed")
    problems += [f"storage test {s}" for s in short]

    narrowing = [f"{v}={os.environ[v]!r}" for v in NARROWING if os.environ.get(v)]
    print("filters and knobs set: " + (", ".join(narrowing) if narrowing else "none"))
    if narrowing:
        problems.append("set, and CI sets none of them: " + ", ".join(narrowing))

    for p in problems:
        print(f"FAIL: {p}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
