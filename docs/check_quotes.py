#!/usr/bin/env python3
"""check_quotes.py PAGE.md... - the code the pages quote is the code CI runs.

In a page, a line `<!-- quote: examples/NAME.c -->` (a path relative to the
page) must be followed by a fenced code block whose lines appear, in order
and contiguous, in that file. Exits 1 naming every quote that drifted.
"""
import os
import re
import sys

MARK = re.compile(r"<!--\s*quote:\s*(\S+)\s*-->")


def blocks(lines):
    """Yield (line number, quoted path, block lines) for every marked block."""
    i = 0
    while i < len(lines):
        m = MARK.search(lines[i])
        i += 1
        if not m:
            continue
        start = i
        while i < len(lines) and not lines[i].startswith("```"):
            i += 1
        j = i + 1
        while j < len(lines) and not lines[j].startswith("```"):
            j += 1
        yield start, m.group(1), lines[i + 1:j]
        i = j + 1


def contains(haystack, needle):
    n = len(needle)
    return any(haystack[k:k + n] == needle for k in range(len(haystack) - n + 1))


def main(pages):
    bad = 0
    count = 0
    for page in pages:
        with open(page, encoding="utf-8") as f:
            lines = f.read().splitlines()
        for lineno, path, block in blocks(lines):
            count += 1
            src = os.path.join(os.path.dirname(page), path)
            try:
                with open(src, encoding="utf-8") as f:
                    text = f.read().splitlines()
            except OSError as e:
                print(f"{page}:{lineno}: {path}: {e}")
                bad += 1
                continue
            if not block or not contains(text, block):
                print(f"{page}:{lineno}: the quoted block is not in {path} any more")
                bad += 1
    print(f"{count} quotes checked, {bad} drifted")
    return 1 if bad or not count else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
