"""Lattice paths: count monotone paths through a grid with blocked cells.

The grid and blocked cells are random; the count is computed by dynamic programming at
generation time. Higher difficulty means larger grids, more obstacles and, at the top
levels, diagonal steps as well.
"""

import random

NAME = "lattice-paths"
TOPIC = "counting lattice paths with obstacles"
DESCRIPTION = (
    "Count the monotone paths from the top-left to the bottom-right cell of a grid with blocked cells."
)

MAX_ANSWER_CHARS = 60
# difficulty -> (row range, column range, blocked fraction, diagonal steps allowed)
LEVELS = {
    1: ((3, 4), (4, 5), 0.15, False),
    2: ((4, 5), (5, 6), 0.15, False),
    3: ((5, 7), (6, 8), 0.18, False),
    4: ((6, 8), (7, 9), 0.2, True),
    5: ((8, 10), (9, 12), 0.22, True),
}


def _count(grid: list[str], diagonal: bool) -> int:
    rows, cols = len(grid), len(grid[0])
    ways = [[0] * cols for _ in range(rows)]
    for r in range(rows):
        for c in range(cols):
            if grid[r][c] == "#":
                continue
            if r == 0 and c == 0:
                ways[r][c] = 1
                continue
            total = (ways[r - 1][c] if r > 0 else 0) + (ways[r][c - 1] if c > 0 else 0)
            if diagonal and r > 0 and c > 0:
                total += ways[r - 1][c - 1]
            ways[r][c] = total
    return ways[rows - 1][cols - 1]


def generate(seed: int, difficulty: int) -> dict:
    difficulty = max(1, min(5, int(difficulty)))
    rng = random.Random(seed * 1000 + difficulty)
    (rlo, rhi), (clo, chi), frac, diagonal = LEVELS[difficulty]
    for _ in range(200):
        rows, cols = rng.randint(rlo, rhi), rng.randint(clo, chi)
        cells = [
            (r, c) for r in range(rows) for c in range(cols) if (r, c) not in ((0, 0), (rows - 1, cols - 1))
        ]
        blocked = rng.sample(cells, max(1, round(frac * rows * cols)))
        grid = ["".join("#" if (r, c) in blocked else "." for c in range(cols)) for r in range(rows)]
        count = _count(grid, diagonal)
        if count >= 2:
            break
    moves = (
        "one cell right, one cell down, or one cell diagonally down-right"
        if diagonal
        else "one cell right or one cell down"
    )
    question = (
        "In the grid below, '.' is an open cell and '#' is a blocked cell:\n\n"
        + "\n".join(grid)
        + f"\n\nStarting in the top-left cell, each step moves {moves}, and a path may never enter a "
        "blocked cell. How many different paths lead from the top-left cell to the bottom-right cell?\n"
        "Answer with a single non-negative integer in decimal digits, nothing else."
    )
    meta = {
        "rows": rows,
        "cols": cols,
        "blocked": len(blocked),
        "grid": grid,
        "diagonal": diagonal,
        "count": count,
    }
    return {"question": question, "witness": str(count), "meta": meta}


def verify(instance: dict, answer: str) -> float:
    try:
        if not isinstance(answer, str) or len(answer) > MAX_ANSWER_CHARS:
            return 0.0
        text = answer.strip().replace(",", "")
        if not text.isdigit():
            return 0.0
        return 1.0 if int(text) == int(instance["meta"]["count"]) else 0.0
    except Exception:
        return 0.0
