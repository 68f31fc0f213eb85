#!/usr/bin/env python3
"""Generate the benchmark tree: N files of 1-4 KiB random content in N/100 folders.

Usage: gen_tree.py ROOT N [SEED]

Deterministic for a given (N, SEED): file sizes come from a seeded PRNG, the
content from a seeded stream, so a tree regenerated later has the same shape.
Writes into ROOT.tmp and renames it to ROOT at the end, so an interrupted run
never leaves a half tree that looks complete.
"""
import os
import random
import shutil
import sys


def main() -> None:
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    root, n = sys.argv[1], int(sys.argv[2])
    seed = int(sys.argv[3]) if len(sys.argv) == 4 else 1
    folders = max(1, n // 100)
    rng = random.Random(seed)
    # One 8 MiB pool of random bytes; each file takes a slice at a random
    # offset, so content differs between files without calling urandom
    # 100k times (and files stay distinct, so no server-side dedupe helps).
    pool = rng.randbytes(8 << 20)
    tmp = root + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    for i in range(n):
        d = os.path.join(tmp, f"d{i % folders:05d}")
        if i < folders:
            os.mkdir(d)
        size = rng.randint(1024, 4096)
        off = rng.randrange(0, len(pool) - size)
        # A per-file header makes each file unique even if slices overlap.
        data = f"{i}\n".encode() + pool[off:off + size - 16]
        with open(os.path.join(d, f"f{i:07d}.bin"), "wb") as f:
            f.write(data)
    os.rename(tmp, root)


if __name__ == "__main__":
    main()
