"""Wall time of `news-monitor feeds import` for OPML files of growing size.

For each size (outline elements, folders included: one folder per 100
outlines) two shapes are measured, with the real CLI in a subprocess on a
fresh database:

- titled:   every feed has a title of its own and a URL of its own;
- untitled: no titles and one host, so every name is made from the host
  (``feeds-example-com``, ``feeds-example-com-2``...), the worst case for naming.

Each row prints the time to read the OPML in-process (``parse_opml``), the
first import, and a second import of the same file (every feed already there).
Times include interpreter start-up (about a second on a loaded machine).

    .venv/bin/python bench/opml_import.py [--sizes 1000,10000,100000] [--shapes titled,untitled]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from xml.sax.saxutils import quoteattr

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from monitor.feeds.opml import parse_opml  # noqa: E402

PER_FOLDER = 99  # feed outlines per folder outline


def opml(outlines: int, *, titled: bool) -> bytes:
    """An OPML document of ``outlines`` outline elements (folders included)."""
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<opml version="2.0">',
        "<head><title>bench</title></head>",
        "<body>",
    ]
    written = feeds = 0
    while written < outlines:
        lines.append(f'<outline text="Folder {written // (PER_FOLDER + 1)}">')
        written += 1
        for _ in range(min(PER_FOLDER, outlines - written)):
            title = f" text={quoteattr(f'Wire service number {feeds}')}" if titled else ""
            url = f"https://feeds.example.com/{feeds}/rss.xml"
            lines.append(f'  <outline type="rss"{title} xmlUrl="{url}"/>')
            written += 1
            feeds += 1
        lines.append("</outline>")
    lines += ["</body>", "</opml>", ""]
    return "\n".join(lines).encode()


def write_config(directory: Path) -> None:
    monitor = {"database": str(directory / "bench.db"), "feeds": []}
    (directory / "monitor.yaml").write_text(json.dumps(monitor))
    (directory / "rules.yaml").write_text(json.dumps({"rules": []}))
    (directory / "entities.yaml").write_text(json.dumps({"entities": []}))


def import_opml(config: Path, path: Path, timeout: float) -> tuple[float, str]:
    started = time.perf_counter()
    try:
        result = subprocess.run(
            [sys.executable, "-m", "monitor", "feeds", "import", str(path), "--config", str(config)],
            capture_output=True,
            text=True,
            check=False,
            cwd=REPO,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return float("inf"), f"gave up after {timeout:g} s"
    said = (result.stdout.strip().splitlines() or [""])[-1] or (result.stderr.strip().splitlines() or [""])[-1]
    return time.perf_counter() - started, f"exit {result.returncode}: {said[:100]}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000", help="outline counts, comma-separated")
    parser.add_argument("--shapes", default="titled,untitled")
    parser.add_argument("--timeout", type=float, default=900, help="give up on one import after this many seconds")
    args = parser.parse_args()
    print(f"{'outlines':>9} {'shape':>8} {'MB':>6} {'parse s':>8} {'import s':>9} {'again s':>8}  result")
    for size in (int(part) for part in args.sizes.split(",")):
        for shape in args.shapes.split(","):
            data = opml(size, titled=shape == "titled")
            started = time.perf_counter()
            parse_opml(data)
            parse_seconds = time.perf_counter() - started
            with tempfile.TemporaryDirectory() as tmp:
                config = Path(tmp)
                write_config(config)
                path = config / "feeds.opml"
                path.write_bytes(data)
                first, said = import_opml(config, path, args.timeout)
                again, said_again = import_opml(config, path, args.timeout)
            print(
                f"{size:>9,} {shape:>8} {len(data) / 1e6:>6.1f} {parse_seconds:>8.2f} {first:>9.2f} {again:>8.2f}"
                f"  {said} | {said_again}",
                flush=True,
            )


if __name__ == "__main__":
    main()
