"""Embedded default: generate a small paired-video demo archive (the detection job completes this command).

    python -m jobs.demo
"""

from __future__ import annotations

import logging
import sys

from fusion.data.generate import ArchiveSpec, write_archive


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    manifest = write_archive(ArchiveSpec(out="demo-output/archive", clips=4, seconds=6.0))
    print(f"demo archive written; manifest: {manifest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
