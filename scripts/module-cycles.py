#!/usr/bin/env python3
"""Module import cycles in a Rust crate, between siblings.

Every reference from module A to module B (use crate::..., crate::x::y,
super::...) becomes an edge between the two children of their common
parent that contain A and B; cycles among siblings are reported."""
import os, re, sys
from collections import defaultdict

def modules(src):
    mods = {}
    for root, _, files in os.walk(src):
        for f in files:
            if not f.endswith('.rs'):
                continue
            p = os.path.join(root, f)
            rel = os.path.relpath(p, src)[:-3].split(os.sep)
            if rel[-1] in ('mod', 'lib', 'main'):
                rel = rel[:-1]
            mods[tuple(rel)] = p
    return mods

def refs(text, me):
    out = set()
    text = re.sub(r'//[^\n]*', '', text)
    # use crate::{a, b::c}; and crate::a::b paths
    for m in re.finditer(r'crate::((?:[a-z_][a-z0-9_]*::)*[a-z_][a-z0-9_]*)', text):
        out.add(tuple(m.group(1).split('::')))
    for m in re.finditer(r'use crate::\{([^}]*)\}', text, re.S):
        for part in m.group(1).split(','):
            part = part.strip()
            if part:
                out.add(tuple(part.split('::')[:3]))
    for m in re.finditer(r'\b((?:super::)+)((?:[a-z_][a-z0-9_]*::)*[a-z_][a-z0-9_]*)', text):
        ups = m.group(1).count('super::')
        base = list(me)[:max(0, len(me) - ups)]
        out.add(tuple(base + m.group(2).split('::')))
    return out

def resolve(path, mods):
    for n in range(len(path), 0, -1):
        if path[:n] in mods:
            return path[:n]
    return None

def main(src):
    mods = modules(src)
    edges = defaultdict(set)
    why = {}
    for me, p in mods.items():
        text = open(p).read()
        # files with #[path] tests etc: ignore cfg(test) modules roughly
        for r in refs(text, me):
            t = resolve(r, mods)
            if t is None or t == me:
                continue
            # common parent
            k = 0
            while k < min(len(me), len(t)) and me[k] == t[k]:
                k += 1
            if k >= len(me) or k >= len(t):
                continue  # ancestor/descendant: not siblings
            a, b = me[:k+1], t[:k+1]
            edges[a].add(b)
            why.setdefault((a, b), (me, t))
    # SCCs (Tarjan)
    index = {}; low = {}; stack = []; on = set(); sccs = []; i = [0]
    def strong(v):
        index[v] = low[v] = i[0]; i[0] += 1; stack.append(v); on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                strong(w); low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop(); on.discard(w); comp.append(w)
                if w == v: break
            if len(comp) > 1:
                sccs.append(comp)
    sys.setrecursionlimit(10000)
    for v in list(edges):
        if v not in index:
            strong(v)
    for comp in sccs:
        names = sorted('::'.join(c) for c in comp)
        print('cycle:', ', '.join(names))
        cs = set(comp)
        for a in comp:
            for b in edges[a]:
                if b in cs:
                    f, t = why[(a, b)]
                    print(f'   {"::".join(a)} -> {"::".join(b)}  ({"::".join(f)} uses {"::".join(t)})')
    print(f'{len(sccs)} cycles')

main(sys.argv[1])
