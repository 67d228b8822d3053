#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Check that blockcrypt's modules depend on each other only downwards.

The allowed directions are written once, in README.md's "Layout" section,
as a fenced block after the line `<!-- layers -->`:

    roots: include lib src          (where quoted #includes are looked up)
    external: config.h              (generated headers, not in git)
    api: include lib/libblockcrypt.sym src  (the module of the public
                                    header, the version script of the shared
                                    library, and the folders whose modules
                                    link that library: for them a function
                                    the script exports is a use of the header's
                                    module, not of the lib module defining it)
    lib/core:                       (a module with no dependencies)
    lib/engine: lib/core            (MODULE: modules it may use)
    src/cli: lib/* src/attach       (DIR/* = every module below DIR)

A module is a folder; a file belongs to the module with the longest
matching prefix, and every C file under a module tree (the top folders
the modules name) must belong to one.  Three checks, all errors:
  1. the rules themselves have no cycle;
  2. every quoted #include of a tracked file in another module is allowed
     (an #include that resolves to nothing tracked or external is an error
     too, so a typo cannot hide an edge);
  3. with --build DIR, the link graph: a symbol an object file of module A
     uses and module B defines (nm) makes the edge A -> B, which must be
     allowed - this catches a call through a prototype written by hand.
Rules are not transitive: a module lists everything it uses directly.

Usage: scripts/check-layers.py [--root DIR] [--readme FILE] [--build DIR]
Exit 0 when all holds, 1 on a violation (one line each), 2 on bad input.
"""
import argparse
import os
import re
import subprocess
import sys

INCLUDE_RE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')
C_SUFFIXES = (".c", ".h")


class BadInput(Exception):
    pass


def parse_rules(readme):
    """{module: set(deps)}, roots, externals from README's layers block."""
    try:
        with open(readme, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError as e:
        raise BadInput(f"{readme}: {e}")
    try:
        start = lines.index("<!-- layers -->")
    except ValueError:
        raise BadInput(f"{readme}: no '<!-- layers -->' block")
    if start + 1 >= len(lines) or not lines[start + 1].startswith("```"):
        raise BadInput(f"{readme}: '<!-- layers -->' must be followed by a ``` block")
    rules, roots, externals, api = {}, [], set(), None
    for n, line in enumerate(lines[start + 2:], start + 3):
        if line.startswith("```"):
            break
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        key, sep, rest = text.partition(":")
        if not sep:
            raise BadInput(f"{readme}:{n}: expected 'MODULE: DEPS', got '{line}'")
        key, words = key.strip().rstrip("/"), [w.rstrip("/") for w in rest.split()]
        if key == "roots":
            roots = words
        elif key == "external":
            externals |= set(words)
        elif key == "api":
            if len(words) < 3:
                raise BadInput(f"{readme}:{n}: expected 'api: MODULE VERSION-SCRIPT DIR...'")
            api = (words[0], words[1], words[2:])
        elif key in rules:
            raise BadInput(f"{readme}:{n}: module {key} listed twice")
        else:
            rules[key] = set(words)
    else:
        raise BadInput(f"{readme}: the layers block is not closed")
    for m, deps in rules.items():
        for d in [d for d in deps if d.endswith("/*")]:
            deps.discard(d)
            deps |= {x for x in rules if x.startswith(d[:-1])}
            if not any(x.startswith(d[:-1]) for x in rules):
                raise BadInput(f"{readme}: {m} may use {d}, which matches no module")
        for d in deps:
            if d not in rules:
                raise BadInput(f"{readme}: {m} may use {d}, which is not a module")
            if d == m:
                raise BadInput(f"{readme}: {m} lists itself")
    if not rules:
        raise BadInput(f"{readme}: the layers block names no module")
    if api and api[0] not in rules:
        raise BadInput(f"{readme}: api: {api[0]} is not a module")
    return rules, roots, externals, api


def exported_symbols(root, script):
    """The names a version script lists (global: NAME; ...)."""
    try:
        with open(os.path.join(root, script), encoding="utf-8") as f:
            text = re.sub(r"/\*.*?\*/", "", f.read(), flags=re.S)
    except OSError as e:
        raise BadInput(f"{script}: {e}")
    names = set(re.findall(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*;", text, flags=re.M))
    if not names:
        raise BadInput(f"{script}: exports nothing")
    return names


def find_cycle(graph):
    """One cycle of GRAPH ({node: deps}) as a list, or None."""
    state, stack = {}, []

    def visit(n):
        state[n] = "open"
        stack.append(n)
        for d in sorted(graph.get(n, ())):
            if state.get(d) == "open":
                return stack[stack.index(d):] + [d]
            if d not in state:
                c = visit(d)
                if c:
                    return c
        stack.pop()
        state[n] = "done"
        return None

    for n in sorted(graph):
        if n not in state:
            c = visit(n)
            if c:
                return c
    return None


def module_of(path, modules):
    best = None
    for m in modules:
        if (path == m or path.startswith(m + "/")) and (best is None or len(m) > len(best)):
            best = m
    return best


def tracked_files(root):
    try:
        out = subprocess.run(["git", "-C", root, "ls-files", "-co", "--exclude-standard"],
                             capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        raise BadInput(f"{root}: cannot list files with git: {e}")
    return sorted(p for p in out.splitlines() if os.path.isfile(os.path.join(root, p)))


def check_includes(root, files, rules, roots, externals):
    errors, fileset = [], set(files)
    tops = {m.split("/", 1)[0] for m in rules}
    for path in files:
        if not path.endswith(C_SUFFIXES) or path.split("/", 1)[0] not in tops:
            continue
        mod = module_of(path, rules)
        if mod is None:
            errors.append(f"{path}: in no module of the layers block")
            continue
        with open(os.path.join(root, path), encoding="utf-8", errors="replace") as f:
            for n, line in enumerate(f, 1):
                m = INCLUDE_RE.match(line)
                if not m:
                    continue
                name = m.group(1)
                cands = [os.path.normpath(os.path.join(os.path.dirname(path), name))]
                cands += [os.path.normpath(os.path.join(r, name)) for r in roots]
                target = next((c for c in cands if c in fileset), None)
                if target is None:
                    if name not in externals:
                        errors.append(f"{path}:{n}: #include \"{name}\" is no tracked file")
                    continue
                tmod = module_of(target, rules)
                if tmod is None:
                    errors.append(f"{path}:{n}: #include \"{name}\" is {target}, in no module")
                elif tmod != mod and tmod not in rules[mod]:
                    errors.append(f"{path}:{n}: {mod} -> {tmod} is not allowed "
                                  f"(#include \"{name}\")")
    return errors


def object_sources(build, files):
    """{object path: tracked source} for meson's objects under BUILD
    (SUBDIR/TARGET.p/MANGLED.o, MANGLED = the path below SUBDIR with '/'
    turned into '_')."""
    by_mangled = {}
    for f in files:
        if f.endswith(".c"):
            parts = f.split("/")
            for i in range(len(parts)):
                sub = "/".join(parts[:i])
                by_mangled.setdefault((sub, "_".join(parts[i:])), f)
    out = {}
    for dirpath, _dirs, names in os.walk(build):
        if not dirpath.endswith(".p"):
            continue
        sub = os.path.relpath(os.path.dirname(dirpath), build)
        sub = "" if sub == "." else sub
        for n in names:
            if n.endswith(".c.o"):
                src = by_mangled.get((sub, n[:-2]))
                if src:
                    out[os.path.join(dirpath, n)] = src
    return out


def check_links(build, files, rules, api_module=None, api_syms=(), api_dirs=()):
    objs = object_sources(build, files)
    if not objs:
        raise BadInput(f"{build}: no object files of tracked sources (not a built meson tree?)")
    defined, used = {}, []
    for obj, src in sorted(objs.items()):
        mod = module_of(src, rules)
        if mod is None:
            continue            # tests, benchmarks, fuzzers: anything goes
        try:
            out = subprocess.run(["nm", "-P", obj], capture_output=True, text=True,
                                 check=True).stdout
        except (OSError, subprocess.CalledProcessError) as e:
            raise BadInput(f"nm {obj}: {e}")
        for line in out.splitlines():
            w = line.split()
            if len(w) < 2:
                continue
            if w[1] == "U":
                used.append((mod, src, w[0]))
            elif w[1] in "TDBRCGSV":
                defined.setdefault(w[0], mod)
    errors = set()
    for mod, src, sym in used:
        dmod = defined.get(sym)
        if dmod and sym in api_syms and any(mod == d or mod.startswith(d + "/") for d in api_dirs):
            dmod = api_module   # through the shared library
        if dmod and dmod != mod and dmod not in rules[mod]:
            errors.add(f"{src}: {mod} -> {dmod} is not allowed (links to {sym})")
    return sorted(errors), len(objs)


def main():
    ap = argparse.ArgumentParser(description="Check the allowed directions between modules.")
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument("--root", default=here, help="the source tree (default: this one)")
    ap.add_argument("--readme", help="the file with the layers block (default ROOT/README.md)")
    ap.add_argument("--build", help="a built meson tree: also check the link graph")
    args = ap.parse_args()
    try:
        rules, roots, externals, api = parse_rules(args.readme or os.path.join(args.root, "README.md"))
        cycle = find_cycle(rules)
        if cycle:
            print("check-layers: the rules have a cycle: " + " -> ".join(cycle))
            return 1
        files = tracked_files(args.root)
        errors = check_includes(args.root, files, rules, roots, externals)
        nobj = 0
        if args.build:
            api_args = (api[0], exported_symbols(args.root, api[1]), api[2]) if api else ()
            link_errors, nobj = check_links(args.build, files, rules, *api_args)
            errors += link_errors
    except BadInput as e:
        print(f"check-layers: {e}", file=sys.stderr)
        return 2
    for e in errors:
        print(f"check-layers: {e}")
    if errors:
        return 1
    print(f"check-layers: {len(rules)} modules, no edge against the rules"
          + (f" ({nobj} object files checked)" if args.build else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
