#!/usr/bin/python3
"""The folder arrows point down: each room includes only itself and the rooms below it.

    core <- image, weights, kernels <- engine <- scheduler <- server <- app

Reads every C++/CUDA source under the rooms and fails, naming file and line, on an
#include "room/..." that the table below does not allow. Run by ctest (label: layout).
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]

# room -> the rooms its files may include (itself always).
ALLOWED = {
    "core": set(),
    "image": {"core"},
    "weights": {"core"},
    "kernels": {"core"},
    "engine": {"core", "image", "weights", "kernels"},
    "scheduler": {"core", "image", "weights", "engine"},
    "server": {"core", "image", "weights", "engine", "scheduler"},
    "app": {"core", "image", "weights", "engine", "scheduler", "server", "kernels"},
}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([a-z_]+)/')
SOURCES = {".h", ".cpp", ".cu", ".cuh"}


def violations():
    for room, allowed in ALLOWED.items():
        for path in sorted((ROOT / room).rglob("*")):
            if path.suffix not in SOURCES:
                continue
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                match = INCLUDE.match(line)
                if not match:
                    continue
                target = match.group(1)
                if target in ALLOWED and target != room and target not in allowed:
                    yield f"{path.relative_to(ROOT)}:{number}: {room}/ includes {target}/"


def main():
    found = list(violations())
    for v in found:
        print(v)
    counted = sum(1 for room in ALLOWED for p in (ROOT / room).rglob("*") if p.suffix in SOURCES)
    if found:
        print(f"layering: {len(found)} include(s) point up or sideways")
        return 1
    if counted == 0:
        print("layering: no sources found under", ROOT)
        return 1
    print(f"layering: {counted} files, every include points down")
    return 0


if __name__ == "__main__":
    sys.exit(main())
