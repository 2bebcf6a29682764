"""Grid navigation: count the fewest moves from S to E in a grid maze with walls.

Walls are scattered at random, the start is placed on an open cell, and the exit is chosen among
the cells far from it (by breadth-first search) so the answer needs a genuine search. The question
prints no numbers (the picture shows the size), so the answer cannot be guessed from them.
"""

from __future__ import annotations

import random
import re
from collections import deque

NAME = "grid-navigation"
TOPIC = "grid navigation"
DESCRIPTION = "Find the minimum number of moves from a start cell to an exit cell in a grid with walls."

ATTEMPTS = 200  # a grid with a long enough route takes about 6 draws at level 5


def _bfs(grid: list[list[str]], start: tuple[int, int]) -> dict[tuple[int, int], int]:
    rows, cols = len(grid), len(grid[0])
    dist = {start: 0}
    queue = deque([start])
    while queue:
        r, c = queue.popleft()
        for dr, dc in ((1, 0), (-1, 0), (0, 1), (0, -1)):
            nr, nc = r + dr, c + dc
            if 0 <= nr < rows and 0 <= nc < cols and grid[nr][nc] != "#" and (nr, nc) not in dist:
                dist[(nr, nc)] = dist[(r, c)] + 1
                queue.append((nr, nc))
    return dist


def generate(seed: int, difficulty: int) -> dict:
    difficulty = max(1, min(5, int(difficulty)))
    rng = random.Random(seed * 1000 + difficulty)
    rows, cols = 4 + 2 * difficulty, 6 + 2 * difficulty
    density = 0.26 + 0.03 * difficulty
    for _ in range(ATTEMPTS):
        grid = [["#" if rng.random() < density else "." for _ in range(cols)] for _ in range(rows)]
        open_cells = [(r, c) for r in range(rows) for c in range(cols) if grid[r][c] == "."]
        if not open_cells:
            continue
        start = rng.choice(open_cells)
        dist = _bfs(grid, start)
        far = max(dist.values())
        if far >= rows + cols - 4:
            break
    else:
        raise RuntimeError(f"no grid with a long enough route in {ATTEMPTS} attempts")
    end = rng.choice(sorted(cell for cell, d in dist.items() if d >= 0.7 * far))
    grid[start[0]][start[1]], grid[end[0]][end[1]] = "S", "E"
    picture = "\n".join("".join(row) for row in grid)
    question = (
        "Here is a grid maze. '#' is a wall, '.' is an open cell, 'S' is the start and 'E' is the exit:\n\n"
        + picture
        + "\n\nEach move goes one cell up, down, left or right (no diagonal moves), never into a wall "
        "and never outside the grid. What is the minimum number of moves needed to get from S to E? "
        "Answer format: a single integer in decimal digits, nothing else."
    )
    return {
        "question": question,
        "witness": str(dist[end]),
        "meta": {
            "rows": rows,
            "cols": cols,
            "walls": sum(row.count("#") for row in grid),
            "start": list(start),
            "end": list(end),
            "steps": dist[end],
        },
    }


def verify(instance: dict, answer: str) -> float:
    try:
        if not isinstance(answer, str) or len(answer) > 40:
            return 0.0
        s = answer.strip()
        if not re.fullmatch(r"[0-9]{1,12}", s):
            return 0.0
        return 1.0 if int(s) == int(instance["meta"]["steps"]) else 0.0
    except Exception:
        return 0.0
