"""How long one regex rule takes on hostile text: ``/(a+)+b/`` and friends.

A backtracking engine takes time exponential in the length of a word on
patterns with nested repetition; RE2 takes linear time. Each case compiles the
rule and evaluates it on one item through the same code the daemon uses
(``compile_rule`` then ``explain``), in a child process that is stopped after
``--cap`` seconds (then the figure printed is "> cap").

    .venv/bin/python bench/regex.py [--cap 120]

To measure another checkout (e.g. the code before a change), put it first on
PYTHONPATH: ``PYTHONPATH=/path/to/old .venv/bin/python bench/regex.py``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time

CASES = [
    ("/(a+)+b/", "30 chars: 'a' x 29 + 'c'", "a" * 29 + "c"),
    ("/(a+)+b/", "35 chars: 'a' x 34 + '!'", "a" * 34 + "!"),
    ("/(a+)+b/", "100 KB: 'a' x 102,399 + 'c'", "a" * (100 * 1024 - 1) + "c"),
    ("/(a|aa)*c/", "100 KB: 'a' x 102,399 + 'b'", "a" * (100 * 1024 - 1) + "b"),
    ("/[ab]*a[ab]{99}/", "100 KB of random a/b", None),
    ("/pu[ts]in/", "100 KB of words", None),
]

_CHILD = """
import random, sys, time
from monitor.rules.document import Document, Lexicon
from monitor.rules.evaluate import compile_rule, explain
query, kind = sys.argv[1], sys.argv[2]
text = sys.stdin.read()
if kind == "random a/b":
    rng = random.Random(1)
    text = "".join(rng.choice("ab") for _ in range(100 * 1024))
elif kind == "words":
    rng = random.Random(1)
    vocabulary = ["putin", "pusin", "talks", "kremlin", "ceasefire", "said", "on", "the"]
    text = " ".join(rng.choice(vocabulary) for _ in range(100 * 1024 // 6))[: 100 * 1024]
lexicon = Lexicon()
rule = compile_rule("bench", query, lexicon)
started = time.perf_counter()
hits = explain(rule, Document(title="", body=text), lexicon)
print(f"{time.perf_counter() - started:.6f} {'match' if hits is not None else 'no match'}")
"""


def measure(query: str, text: str | None, kind: str, cap: float) -> str:
    started = time.monotonic()
    try:
        done = subprocess.run(
            [sys.executable, "-c", _CHILD, query, kind],
            input=text or "",
            capture_output=True,
            text=True,
            timeout=cap,
            check=False,
            cwd=tempfile.gettempdir(),  # so that PYTHONPATH, not the current directory, decides the code measured
        )
    except subprocess.TimeoutExpired:
        return f"> {cap:g} s (stopped)"
    if done.returncode != 0:
        last = done.stderr.strip().splitlines()[-1:] or ["?"]
        return f"error: {last[0]} (after {time.monotonic() - started:.1f} s)"
    seconds, verdict = done.stdout.split(maxsplit=1)
    return f"{float(seconds) * 1000:.3f} ms ({verdict.strip()})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cap", type=float, default=120, help="seconds before a case is stopped")
    args = parser.parse_args()
    probe = subprocess.run(
        [sys.executable, "-c", "import monitor; print(monitor.__file__)"],
        capture_output=True, text=True, check=False, cwd=tempfile.gettempdir(),
    )  # fmt: skip
    print(f"code measured: {probe.stdout.strip() or probe.stderr.strip()}")
    print(f"{'rule':<18} {'text':<32} evaluation time")
    for query, label, text in CASES:
        kind = "random a/b" if "random" in label else "words" if "words" in label else "given"
        print(f"{query:<18} {label:<32} {measure(query, text, kind, args.cap)}", flush=True)


if __name__ == "__main__":
    main()
