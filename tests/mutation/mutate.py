#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Mutation testing for blockcrypt's guard tests (issue #21).

Each entry of tests/mutation/mutations.toml plants one known bug (an exact
text edit) in a temporary copy of the repository and names the tests that
claim to guard against it.  The harness builds the copy once, checks that
every named test passes on the unmutated build, then per mutation: applies
the edit, rebuilds incrementally, runs the listed tests `runs` times and
restores the file.  A mutation is CAUGHT when, in every run, at least one
of its tests fails; otherwise it SURVIVED and the guard does not do its job.

Nothing is ever changed in the repository itself: everything happens in a
copy of its tracked and untracked-not-ignored files (git ls-files -co
--exclude-standard) under a temporary directory.

Usage: tests/mutation/mutate.py [--only NAME|GLOB]... [--list] [--check] [--markdown]
                                [--runs N] [--keep] [--catalog FILE]
                                [--timeout-multiplier X]
(scripts/mutate.sh installs the test packages first, then runs this.)
Standard library only (Python 3.11: tomllib).
"""
import argparse
import difflib
import fnmatch
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
# The default build of scripts/test.sh: scripts/build.sh build -Dwerror=true
MESON_SETUP_ARGS = ["-Dwerror=true"]
NUM_PROCESSES = "2"
ENTRY_KEYS = {"name", "why", "file", "find", "replace", "edits", "tests", "runs",
              "timeout_multiplier"}
EDIT_KEYS = {"file", "find", "replace"}


class CatalogError(Exception):
    pass


def die(msg):
    print(f"mutate: ERROR: {msg}", file=sys.stderr)
    sys.exit(2)


# ---------------------------------------------------------------- catalog

def load_catalog(path):
    """The catalog's entries, checked for shape (not yet against the code)."""
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise CatalogError(f"{path}: {e}")
    unknown_top = set(data) - {"mutation"}
    if unknown_top:
        raise CatalogError(f"{path}: unknown top-level keys {sorted(unknown_top)}")
    entries = data.get("mutation", [])
    if not entries:
        raise CatalogError(f"{path}: no [[mutation]] entries")
    seen = set()
    out = []
    for i, m in enumerate(entries):
        where = f"{path}: mutation #{i + 1} ({m.get('name', '?')})"
        unknown = set(m) - ENTRY_KEYS
        if unknown:
            raise CatalogError(f"{where}: unknown keys {sorted(unknown)}")
        for k in ("name", "why"):
            if not isinstance(m.get(k), str) or not m[k].strip():
                raise CatalogError(f"{where}: '{k}' must be a non-empty string")
        if m["name"] in seen:
            raise CatalogError(f"{where}: duplicate name")
        seen.add(m["name"])
        # One edit (file/find/replace) or several (edits = [{file,find,replace}, ...]),
        # applied in order; each find must occur exactly once when it is applied.
        if "edits" in m:
            if any(k in m for k in ("file", "find", "replace")):
                raise CatalogError(f"{where}: give either file/find/replace or edits, not both")
            edits = m["edits"]
            if not isinstance(edits, list) or not edits:
                raise CatalogError(f"{where}: 'edits' must be a non-empty list")
        else:
            edits = [{k: m.get(k) for k in ("file", "find", "replace")}]
        for e in edits:
            if not isinstance(e, dict) or set(e) - EDIT_KEYS:
                raise CatalogError(f"{where}: an edit has keys other than file/find/replace")
            for k in ("file", "find", "replace"):
                if not isinstance(e.get(k), str):
                    raise CatalogError(f"{where}: '{k}' must be a string")
            if not e["find"]:
                raise CatalogError(f"{where}: 'find' is empty")
            if e["find"] == e["replace"]:
                raise CatalogError(f"{where}: 'replace' equals 'find' (no mutation)")
            if os.path.isabs(e["file"]) or ".." in e["file"].split("/"):
                raise CatalogError(f"{where}: 'file' must be relative to the repository")
        tests = m.get("tests")
        if (not isinstance(tests, list) or not tests
                or not all(isinstance(t, str) and t for t in tests)):
            raise CatalogError(f"{where}: 'tests' must be a non-empty list of test names")
        if len(set(tests)) != len(tests):
            raise CatalogError(f"{where}: a test is listed twice")
        runs = m.get("runs", 1)
        if not isinstance(runs, int) or isinstance(runs, bool) or runs < 1:
            raise CatalogError(f"{where}: 'runs' must be an integer >= 1")
        # For a bug whose symptom is a hang: meson's TIMEOUT (a failure) ends
        # the run sooner than the tests' own 900 s.
        tm = m.get("timeout_multiplier")
        if tm is not None and (isinstance(tm, bool) or not isinstance(tm, (int, float)) or tm <= 0):
            raise CatalogError(f"{where}: 'timeout_multiplier' must be a number > 0")
        out.append({"name": m["name"], "why": m["why"].strip(), "edits": edits,
                    "tests": tests, "runs": runs, "timeout_multiplier": tm})
    return out


def apply_edits(root, m, check_only=False):
    """Apply M's edits under ROOT; returns {file: original text}.  Raises
    CatalogError when a find text does not occur exactly once (stale)."""
    originals, current = {}, {}
    for e in m["edits"]:
        path = os.path.join(root, e["file"])
        if e["file"] not in current:
            try:
                with open(path, encoding="utf-8") as f:
                    current[e["file"]] = originals[e["file"]] = f.read()
            except OSError as err:
                raise CatalogError(f"{m['name']}: cannot read {e['file']}: {err}")
        text = current[e["file"]]
        n = text.count(e["find"])
        if n != 1:
            raise CatalogError(
                f"{m['name']}: 'find' occurs {n} times in {e['file']} (must be exactly 1): "
                f"the mutation is stale or ambiguous; fix the catalog entry. find was:\n"
                + indent(e["find"]))
        current[e["file"]] = text.replace(e["find"], e["replace"], 1)
    if not check_only:
        for f, text in current.items():
            with open(os.path.join(root, f), "w", encoding="utf-8") as fh:
                fh.write(text)
    return originals, current


def restore(root, originals):
    for f, text in originals.items():
        with open(os.path.join(root, f), "w", encoding="utf-8") as fh:
            fh.write(text)


def indent(s, pre="    "):
    return "".join(pre + line for line in s.splitlines(True)) + ("" if s.endswith("\n") else "\n")


def edit_diff(originals, current):
    out = []
    for f in originals:
        out += difflib.unified_diff(originals[f].splitlines(True), current[f].splitlines(True),
                                    f"a/{f}", f"b/{f}", n=2)
    return "".join(out)


# ---------------------------------------------------------------- repo copy / build

def copy_repo(dest):
    r = subprocess.run(["git", "-C", TOP, "ls-files", "-co", "--exclude-standard", "-z"],
                       capture_output=True, check=True)
    n = 0
    for rel in sorted(set(r.stdout.decode().split("\0"))):
        if not rel:
            continue
        src = os.path.join(TOP, rel)
        if not os.path.lexists(src):  # tracked but deleted in the work tree
            continue
        dst = os.path.join(dest, rel)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        if os.path.islink(src):
            os.symlink(os.readlink(src), dst)
        elif os.path.isfile(src):
            shutil.copy2(src, dst)
        else:
            continue
        n += 1
    return n


def run_logged(cmd, log, **kw):
    """Run CMD with output appended to LOG (open file); returns the exit code."""
    log.write(f"$ {' '.join(cmd)}\n")
    log.flush()
    r = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, **kw)
    log.write(f"[exit {r.returncode}]\n")
    log.flush()
    return r.returncode


def list_tests(build):
    r = subprocess.run(["meson", "test", "-C", build, "--list", "--no-rebuild"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        die(f"meson test --list failed:\n{r.stdout}{r.stderr}")
    names = set()
    for line in r.stdout.splitlines():
        if " / " in line:
            names.add(line.rsplit(" / ", 1)[1].strip())
    return names


def missing_tests(selected):
    """Named tests that the tree does not define, as catalog errors: a shell
    test is a file in tests/shell, a unit test a name in tests/meson.build."""
    with open(os.path.join(TOP, "tests", "meson.build"), encoding="utf-8") as f:
        meson_text = f.read()
    errors = []
    for m in selected:
        for t in m["tests"]:
            if t.endswith(".sh"):
                ok = os.path.isfile(os.path.join(TOP, "tests", "shell", t))
            else:
                ok = f"'{t}'" in meson_text
            if not ok:
                errors.append(f"{m['name']}: names test {t}, which does not exist")
    return errors


def run_tests(build, tests, logbase, log, timeout_multiplier):
    """Run TESTS in one `meson test` call (meson keeps the non-parallel ones
    alone).  Returns {test: (result, seconds, output)}."""
    cmd = ["meson", "test", "-C", build, "--no-rebuild", "--print-errorlogs",
           "--num-processes", NUM_PROCESSES, "--logbase", logbase]
    if timeout_multiplier != 1:
        cmd += ["--timeout-multiplier", str(timeout_multiplier)]
    cmd += tests
    jpath = os.path.join(build, "meson-logs", logbase + ".json")
    if os.path.exists(jpath):
        os.unlink(jpath)
    rc = run_logged(cmd, log)
    results = {}
    if os.path.exists(jpath):
        with open(jpath) as f:
            for line in f:
                x = json.loads(line)
                out = (x.get("stdout") or "") + (x.get("stderr") or "")
                name = x["name"].rsplit(" / ", 1)[-1]   # "project:suite / NAME"
                results[name] = (x["result"], x.get("duration", 0.0), out)
    for t in tests:
        if t not in results:
            # meson itself failed before running it: count as an error, not a pass
            results[t] = ("NOT-RUN", 0.0, f"meson test exited {rc} without a result for {t}")
    return results


def tail(text, n=120):
    lines = text.splitlines()
    if len(lines) <= n:
        return text if text.endswith("\n") or not text else text + "\n"
    return f"[... {len(lines) - n} earlier lines left out ...]\n" + "\n".join(lines[-n:]) + "\n"


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description="Mutation testing of blockcrypt's guard tests.")
    ap.add_argument("--only", action="append", default=[], metavar="NAME",
                    help="run only mutations whose name matches (glob; repeatable)")
    ap.add_argument("--list", action="store_true", help="list the catalog and exit")
    ap.add_argument("--check", action="store_true",
                    help="check every entry against the tree (find texts occur once, named "
                         "tests exist) without building anything, and exit")
    ap.add_argument("--markdown", action="store_true",
                    help="print the catalog as a Markdown table (for README.md) and exit")
    ap.add_argument("--runs", type=int, help="runs per mutation, overriding the catalog")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ap.add_argument("--catalog", default=os.path.join(HERE, "mutations.toml"))
    ap.add_argument("--timeout-multiplier", type=float, default=1,
                    help="passed to meson test (default 1)")
    args = ap.parse_args()
    if args.runs is not None and args.runs < 1:
        die("--runs must be >= 1")

    try:
        catalog = load_catalog(args.catalog)
    except CatalogError as e:
        die(str(e))
    selected = [m for m in catalog
                if not args.only or any(fnmatch.fnmatchcase(m["name"], p) for p in args.only)]
    if args.only:
        for p in args.only:
            if not any(fnmatch.fnmatchcase(m["name"], p) for m in catalog):
                die(f"--only {p}: no mutation of that name")

    if args.markdown:
        print("| mutation | file | bug planted | tests that must fail | runs |")
        print("|---|---|---|---|---|")
        for m in selected:
            files = ", ".join(f"`{f}`" for f in dict.fromkeys(e["file"] for e in m["edits"]))
            tests = ", ".join(f"`{t}`" for t in m["tests"])
            print(f"| `{m['name']}` | {files} | {m['why'].replace('|', '/')} | {tests} | {m['runs']} |")
        return 0
    if args.list:
        for m in selected:
            files = ",".join(dict.fromkeys(e["file"] for e in m["edits"]))
            print(f"{m['name']:32} runs={m['runs']} {files}\n    tests: {' '.join(m['tests'])}\n"
                  f"    why: {m['why']}")
        print(f"{len(selected)} mutation(s)")
        return 0

    # Stale entries are errors, found before anything is built.
    stale = []
    for m in selected:
        try:
            apply_edits(TOP, m, check_only=True)
        except CatalogError as e:
            stale.append(str(e))
    if args.check:
        stale += missing_tests(selected)
    if stale:
        for s in stale:
            print(f"mutate: ERROR: {s}", file=sys.stderr)
        die(f"{len(stale)} stale catalog entr{'y' if len(stale) == 1 else 'ies'}")

    if args.check:
        print(f"mutate: {len(selected)} catalog entries match the tree")
        return 0

    tmp = tempfile.mkdtemp(prefix="blockcrypt-mutate-")
    src, build, logs = (os.path.join(tmp, d) for d in ("src", "build", "logs"))
    os.makedirs(logs)
    print(f"mutate: work directory {tmp}", flush=True)
    keep = args.keep
    try:
        return run(args, selected, tmp, src, build, logs)
    except KeyboardInterrupt:
        print("mutate: interrupted", file=sys.stderr)
        keep = True
        return 130
    finally:
        if keep or getattr(run, "keep_logs", False):
            print(f"mutate: kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def run(args, selected, tmp, src, build, logs):
    t0 = time.monotonic()
    n = copy_repo(src)
    with open(os.path.join(logs, "build.log"), "w") as log:
        print(f"mutate: copied {n} files; building (meson setup {' '.join(MESON_SETUP_ARGS)}) ...",
              flush=True)
        if (run_logged(["meson", "setup", build, *MESON_SETUP_ARGS], log, cwd=src) != 0
                or run_logged(["ninja", "-C", build], log) != 0):
            run.keep_logs = True
            die(f"the unmutated copy does not build; see {log.name}")
    known = list_tests(build)
    unknown = sorted({t for m in selected for t in m["tests"]} - known)
    if unknown:
        run.keep_logs = True
        die(f"catalog names tests that do not exist: {', '.join(unknown)}")

    # Baseline: every test used must pass unmutated, or "caught" means nothing.
    tests = sorted({t for m in selected for t in m["tests"]})
    print(f"mutate: baseline: {len(tests)} test(s) on the unmutated build ...", flush=True)
    with open(os.path.join(logs, "baseline.log"), "w") as log:
        res = run_tests(build, tests, "baseline", log, args.timeout_multiplier)
        bad = {t: r for t, r in res.items() if r[0] != "OK"}
        for t in tests:
            log.write(f"{t}: {res[t][0]} {res[t][1]:.1f}s\n")
        for t, (result, secs, out) in sorted(bad.items()):
            log.write(f"\n===== {t}: {result}\n{tail(out)}")
    if bad:
        run.keep_logs = True
        for t, (result, secs, _) in sorted(bad.items()):
            print(f"mutate: baseline: {t}: {result} ({secs:.0f}s)", file=sys.stderr)
        die(f"{len(bad)} test(s) do not pass on the unmutated build (see {log.name}); "
            "a mutation 'caught' by them would mean nothing")
    print(f"mutate: baseline passed ({time.monotonic() - t0:.0f}s so far)", flush=True)

    caught = survived = errors = 0
    for m in selected:
        runs = args.runs or m["runs"]
        status, line = mutate_one(m, runs, src, build, logs, args)
        if status == "caught":
            caught += 1
        elif status == "survived":
            survived += 1
        else:
            errors += 1
        print(line, flush=True)

    summary = f"{caught} caught, {survived} survived"
    if errors:
        summary += f", {errors} error(s)"
    print(f"{summary} ({time.monotonic() - t0:.0f}s)")
    if survived or errors:
        run.keep_logs = True
        return 1
    return 0


def mutate_one(m, runs, src, build, logs, args):
    start = time.monotonic()
    logpath = os.path.join(logs, m["name"] + ".log")
    with open(logpath, "w") as log:
        log.write(f"MUTATION {m['name']}\nwhy:   {m['why']}\ntests: {' '.join(m['tests'])}\n"
                  f"runs:  {runs}\n\n")
        try:
            originals, current = apply_edits(src, m)
        except CatalogError as e:
            log.write(f"ERROR: {e}\n")
            return "error", f"ERROR    {m['name']}: stale find text (see {logpath})"
        try:
            log.write("The edit:\n" + edit_diff(originals, current) + "\n")
            log.write("----- build\n")
            if run_logged(["ninja", "-C", build], log) != 0:
                log.write("\nERROR: the mutated code does not compile: fix the catalog entry.\n")
                return "error", (f"ERROR    {m['name']}: does not compile "
                                 f"({time.monotonic() - start:.0f}s; see {logpath})")
            per_test = {t: 0 for t in m["tests"]}   # runs in which each test failed
            odd = {}                                # test -> results that are neither OK nor a failure
            caught_runs = 0
            run_results = []
            for k in range(1, runs + 1):
                log.write(f"\n----- run {k}/{runs}\n")
                res = run_tests(build, m["tests"], f"mut-{m['name']}-{k}", log,
                                m["timeout_multiplier"] or args.timeout_multiplier)
                failed = [t for t in m["tests"] if res[t][0] not in ("OK", "SKIP")]
                for t in m["tests"]:
                    if res[t][0] == "SKIP":
                        odd.setdefault(t, []).append(f"run {k}: SKIP")
                for t in failed:
                    per_test[t] += 1
                if failed:
                    caught_runs += 1
                run_results.append(res)
            secs = time.monotonic() - start
            fails = ", ".join(f"{t}({c}/{runs})" for t, c in per_test.items() if c) or "none"
            ok = caught_runs == runs
            word = "CAUGHT  " if ok else "SURVIVED"
            line = f"{word} {m['name']}: caught {caught_runs}/{runs}; failed: {fails}; {secs:.0f}s"
            if odd:
                line += "; " + "; ".join(f"{t} {', '.join(v)}" for t, v in odd.items())
            write_summary(log, m, runs, run_results, caught_runs, ok)
            if not ok:
                line += f"\n         log: {logpath}"
            return ("caught" if ok else "survived"), line
        finally:
            restore(src, originals)


def write_summary(log, m, runs, run_results, caught_runs, ok):
    """The verdict first thing a reader needs: per run, per test, the result;
    for a survivor, what the passing tests printed."""
    log.write("\n" + "=" * 72 + "\n")
    if ok:
        log.write(f"VERDICT: CAUGHT in {caught_runs}/{runs} run(s)\n")
    else:
        log.write(f"VERDICT: SURVIVED: caught in only {caught_runs}/{runs} run(s).\n"
                  f"The tests {', '.join(m['tests'])} all passed with this bug in place in "
                  f"{runs - caught_runs} run(s):\n  {m['why']}\n"
                  "Either the tests do not check this property (strengthen them), or the edit "
                  "does not really break it (fix the catalog entry).\n")
    for k, res in enumerate(run_results, 1):
        log.write(f"  run {k}: " + "  ".join(f"{t}={res[t][0]}({res[t][1]:.0f}s)"
                                             for t in m["tests"]) + "\n")
    if not ok:
        for k, res in enumerate(run_results, 1):
            if any(res[t][0] not in ("OK", "SKIP") for t in m["tests"]):
                continue
            for t in m["tests"]:
                log.write(f"\n----- run {k}: {t}: {res[t][0]}; its output (tail):\n{tail(res[t][2])}")
            break   # one uncaught run's output is enough


if __name__ == "__main__":
    sys.exit(main())
