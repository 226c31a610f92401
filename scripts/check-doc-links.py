#!/usr/bin/env python3
"""Every relative link in README.md and docs/ points at a file that exists,
and every #anchor at a heading of that file (GitHub's anchor rules)."""
import os, re, sys

def anchors(path):
    out, inside = set(), False
    for line in open(path, encoding="utf-8"):
        if line.startswith("```"):
            inside = not inside
        m = None if inside else re.match(r"^#{1,6} (.*)", line)
        if m:
            t = m.group(1).strip().lower()
            t = re.sub(r"[^\w\- ]", "", t)
            out.add(t.replace(" ", "-"))
    return out

def main(root):
    files = [os.path.join(root, "README.md")]
    for d, _, fs in os.walk(os.path.join(root, "docs")):
        files += [os.path.join(d, f) for f in fs if f.endswith(".md")]
    bad = []
    for f in files:
        text = open(f, encoding="utf-8").read()
        text = re.sub(r"```.*?```", "", text, flags=re.S)
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"^[a-z]+:", target):
                continue
            path, _, anchor = target.partition("#")
            dest = os.path.normpath(os.path.join(os.path.dirname(f), path)) if path else f
            if not os.path.exists(dest):
                bad.append(f"{os.path.relpath(f, root)}: {target}: no such file")
            elif anchor and dest.endswith(".md") and anchor not in anchors(dest):
                bad.append(f"{os.path.relpath(f, root)}: {target}: no such heading")
    for b in bad:
        print(b)
    print(f"{len(files)} files, {len(bad)} broken links")
    return 1 if bad else 0

sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "."))
