"""Write a `.gz` twin next to every compressible static file, for nginx's gzip_static.

    python -m deploy.precompress STATIC_ROOT

nginx then sends the file compressed once at the highest level, instead of compressing it again
on every request. Run after every `collectstatic`.
"""

from __future__ import annotations

import gzip
import shutil
import sys
from pathlib import Path

# Source maps are left out: only developer tools fetch them, and they are the largest files.
COMPRESSIBLE = {".css", ".js", ".mjs", ".json", ".svg", ".txt", ".html", ".xml", ".ico", ".ttf", ".otf"}
# Below this size the gzip header costs more than it saves.
MIN_SIZE = 256


def precompress(root: Path) -> int:
    """Compress what changed since the last run; return how many files were written."""
    written = 0
    for path in root.rglob("*"):
        if path.suffix.lower() not in COMPRESSIBLE or not path.is_file() or path.stat().st_size < MIN_SIZE:
            continue
        target = path.with_name(path.name + ".gz")
        if target.exists() and target.stat().st_mtime >= path.stat().st_mtime:
            continue
        with path.open("rb") as source, gzip.open(target, "wb", compresslevel=9) as out:
            shutil.copyfileobj(source, out)
        written += 1
    return written


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or not Path(args[0]).is_dir():
        print("usage: python -m deploy.precompress STATIC_ROOT (an existing folder)", file=sys.stderr)
        return 2
    written = precompress(Path(args[0]))
    print(f"precompress: {written} file(s) written in {args[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
