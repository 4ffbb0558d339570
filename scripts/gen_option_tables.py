"""Regenerate the option tables of docs/builtin-plugins.md from the components' schemas.

    python scripts/gen_option_tables.py          # rewrite the page
    python scripts/gen_option_tables.py --check  # exit 1 when the page is out of date
"""

from __future__ import annotations

import sys
from pathlib import Path

from zsbench.registry import Registry
from zsbench.site.optiondocs import render_page

PAGE = Path(__file__).resolve().parents[1] / "docs" / "builtin-plugins.md"


def main(argv: list[str]) -> int:
    text = PAGE.read_text()
    fresh = render_page(text, Registry.from_entry_points(strict=True))
    if "--check" in argv:
        if fresh != text:
            print(f"{PAGE} is out of date; run python scripts/gen_option_tables.py", file=sys.stderr)
            return 1
        return 0
    PAGE.write_text(fresh)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
