"""The topic graph of the expansion job: which topics exist, where they came from, which are alike,
and which one to synthesize next.

Topics are nodes of a networkx `DiGraph`, keyed by their display spelling (whitespace collapsed);
lookups go through a normalised key (casefolded), so "Graph  Colouring" and "graph colouring" are
one topic. Two kinds of edge:

- `kind="child"`, parent → child: the child was scouted from the parent.
- `kind="similar"`, newer → older, with the cosine as `similarity`: stored once per pair, from the
  topic that arrived later to the one it resembles. A child always arrives after its parent, so a
  similar edge never collides with a child edge on the same ordered pair.

Topic vectors live in one float32 matrix, a row per topic in insertion order (a node's `order`).

Saved as one JSON file: `{"version", "graph": node_link_data, "vectors": base64 of the float32 rows}`.
One file keeps the save atomic (a temp file, then a rename); counts are not saved, the caller
refreshes them from the library.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Collection, Iterable
from pathlib import Path

import networkx as nx
import numpy as np

from resyn.memory.damage import WorkspaceDamaged, remedy, reported
from resyn.memory.embeddings import DIMENSIONS
from resyn.memory.records import TopicCounts
from resyn.settings import FrontierSettings

ORIGINS = ("seed", "scouted")
_FORMAT_VERSION = 1
# what a corrupt, truncated or foreign file raises while it is parsed (binascii.Error is a ValueError)
_UNREADABLE = (ValueError, KeyError, TypeError, AttributeError, nx.NetworkXError)


def topic_key(name: str) -> str:
    """The identity of a topic name: whitespace collapsed, casefolded."""
    return _display(name).casefold()


def _display(name: str) -> str:
    return " ".join(name.split())


class TopicGraph:
    def __init__(self) -> None:
        self.graph = nx.DiGraph()
        self._names: list[str] = []  # display names; index == matrix row == node "order"
        self._rows: dict[str, int] = {}  # topic_key -> row
        self._matrix = np.zeros((0, DIMENSIONS), dtype=np.float32)  # capacity >= len(self)
        self._counts: dict[int, TopicCounts] = {}

    @classmethod
    def load(cls, path: Path) -> TopicGraph:
        """The saved graph, or an empty one when the file does not exist; WorkspaceDamaged when it
        cannot be read or makes no sense."""
        if not path.exists():
            return cls()
        with reported(path):
            text = path.read_text()
        return cls.from_text(text, path)

    @classmethod
    def from_text(cls, text: str, where: Path | str) -> TopicGraph:
        """The graph a saved document holds (a file's text, or the shared database's copy);
        WorkspaceDamaged, naming `where`, when it makes no sense."""
        topics = cls()
        try:
            document = json.loads(text)
            if document.get("version") != _FORMAT_VERSION:
                raise ValueError(f"unknown format version {document.get('version')!r}")
            graph = nx.node_link_graph(document["graph"], directed=True, multigraph=False, edges="edges")
            raw = base64.b64decode(document["vectors"], validate=True)
            vectors = np.frombuffer(raw, dtype="<f4").reshape(-1, DIMENSIONS)
            names = sorted(graph.nodes, key=lambda name: graph.nodes[name]["order"])
            if [graph.nodes[name]["order"] for name in names] != list(range(len(vectors))):
                raise ValueError(f"{len(graph)} topics do not match {len(vectors)} vectors")
        except _UNREADABLE as error:
            raise WorkspaceDamaged(where, f"damaged ({error})", remedy("damaged", Path(where))) from error
        topics.graph = graph
        topics._names = names
        topics._rows = {topic_key(name): row for row, name in enumerate(names)}
        topics._matrix = vectors.astype(np.float32)  # a writable copy
        return topics

    def save(self, path: Path) -> None:
        """Write the graph and its vectors; a crash mid-write leaves the previous file intact."""
        temporary = path.with_name(path.name + ".tmp")
        with reported(path):
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary.write_text(self.to_text())
            temporary.replace(path)

    def to_text(self) -> str:
        """The saved document: the graph as node-link JSON and its vectors in base64."""
        document = {
            "version": _FORMAT_VERSION,
            "graph": nx.node_link_data(self.graph, edges="edges"),
            "vectors": base64.b64encode(self.vectors.astype("<f4").tobytes()).decode("ascii"),
        }
        return json.dumps(document)

    def __len__(self) -> int:
        return len(self._names)

    def __contains__(self, name: str) -> bool:
        return topic_key(name) in self._rows

    def names(self) -> list[str]:
        """Display names in insertion order."""
        return list(self._names)

    @property
    def vectors(self) -> np.ndarray:
        """The topics' unit vectors, one row per topic in insertion order (a view, not a copy)."""
        return self._matrix[: len(self)]

    def add_topic(
        self,
        name: str,
        vector: np.ndarray,
        *,
        origin: str,
        parent: str | None,
        similar_threshold: float,
    ) -> bool:
        """Add a topic; False (and no change) when one with the same normalised name exists.

        The child edge is added when `parent` is a known topic; similar edges go to every known
        topic whose cosine with `vector` is at least `similar_threshold`.
        """
        if origin not in ORIGINS:
            raise ValueError(f"origin must be one of {ORIGINS}, not {origin!r}")
        vector = np.asarray(vector, dtype=np.float32).reshape(-1)
        if vector.shape != (DIMENSIONS,):
            raise ValueError(f"a topic vector has {DIMENSIONS} dimensions, not {vector.shape}")
        key, display = topic_key(name), _display(name)
        if not display:
            raise ValueError("a topic name cannot be empty")
        if key in self._rows:
            return False

        parent_row = self._rows.get(topic_key(parent)) if parent else None
        if parent_row is not None:
            parent = self._names[parent_row]  # the spelling the graph knows it by
        cosines = self.vectors @ vector
        row = len(self)
        self.graph.add_node(display, origin=origin, parent=parent, order=row)
        if parent_row is not None:
            self.graph.add_edge(parent, display, kind="child")
        for other in np.flatnonzero(cosines >= similar_threshold):
            self.graph.add_edge(display, self._names[other], kind="similar", similarity=float(cosines[other]))
        self._append_row(vector)
        self._names.append(display)
        self._rows[key] = row
        return True

    def _append_row(self, vector: np.ndarray) -> None:
        """Grow the matrix by doubling its capacity, so n additions copy O(n) rows, not O(n²)."""
        if len(self) == len(self._matrix):
            grown = np.zeros((max(16, 2 * len(self._matrix)), DIMENSIONS), dtype=np.float32)
            grown[: len(self)] = self.vectors
            self._matrix = grown
        self._matrix[len(self)] = vector

    def nearest(
        self, vector: np.ndarray, count: int = 1, among: Iterable[str] | None = None
    ) -> list[tuple[str, float]]:
        """The `count` known topics most similar to `vector`, nearest first, with their cosines;
        only those named in `among` when it is given. Ties go to the earlier topic (earlier in
        `among` when given); an empty graph, or no known name in `among`, gives none."""
        if among is None:
            rows, matrix = list(range(len(self))), self.vectors
        else:
            rows = [row for name in among if (row := self._rows.get(topic_key(name))) is not None]
            matrix = self.vectors[rows]
        if count <= 0 or not rows:
            return []
        cosines = matrix @ np.asarray(vector, dtype=np.float32).reshape(-1)
        order = np.argsort(-cosines, kind="stable")[:count]
        return [(self._names[rows[index]], float(cosines[index])) for index in order]

    def set_counts(self, counts: dict[str, TopicCounts]) -> None:
        """Replace every topic's counts. Names recorded in differing spellings of one topic are
        added up (the longest failure streak wins); names of unknown topics are ignored."""
        merged: dict[int, TopicCounts] = {}
        for name, tally in counts.items():
            row = self._rows.get(topic_key(name))
            if row is None:
                continue
            total = merged.setdefault(row, TopicCounts())
            total.attempts += tally.attempts
            total.accepted += tally.accepted
            for status, count in tally.rejections.items():
                total.rejections[status] = total.rejections.get(status, 0) + count
            total.failure_streak = max(total.failure_streak, tally.failure_streak)
        self._counts = merged

    def counts(self, name: str) -> TopicCounts:
        row = self._rows.get(topic_key(name))
        if row is None:
            raise KeyError(f"unknown topic {name!r}")
        return self._counts.get(row, TopicCounts())

    def frontier(
        self,
        count: int,
        rule: FrontierSettings,
        similarity_to_accepted: Callable[[np.ndarray], np.ndarray],
        exclude: Collection[str] = frozenset(),
    ) -> list[str]:
        """The `count` eligible topics with the best score, ties going to the earlier topic.

        score = explore / (1 + attempts) + distance * (1 - s) - failure * failed / attempts, where s
        is `similarity_to_accepted` of the topic's vector: its cosine to the nearest accepted
        environment (0 when there is none), clipped to [0, 1].
        """
        rows = self._eligible_rows(rule, exclude)
        if count <= 0 or not rows:
            return []
        nearness = np.clip(np.asarray(similarity_to_accepted(self.vectors[rows]), dtype=np.float64), 0, 1)
        if nearness.shape != (len(rows),):
            raise ValueError(f"similarity_to_accepted gave shape {nearness.shape} for {len(rows)} topics")
        scores = [
            self._score(self._counts.get(row, TopicCounts()), float(near), rule)
            for row, near in zip(rows, nearness, strict=True)
        ]
        ranked = sorted(range(len(rows)), key=lambda index: (-scores[index], rows[index]))
        return [self._names[rows[index]] for index in ranked[:count]]

    def untried_count(self, exclude: Collection[str] = frozenset()) -> int:
        """Topics never attempted (and not in `exclude`): when these run low, the caller scouts for
        more rather than going back to topics that already have environments."""
        excluded = {self._rows.get(topic_key(name)) for name in exclude}
        return sum(
            1
            for row in range(len(self))
            if row not in excluded and self._counts.get(row, TopicCounts()).attempts == 0
        )

    def _eligible_rows(self, rule: FrontierSettings, exclude: Collection[str]) -> list[int]:
        excluded = {self._rows.get(topic_key(name)) for name in exclude}
        return [
            row
            for row in range(len(self))
            if row not in excluded and not _retired(self._counts.get(row, TopicCounts()), rule)
        ]

    @staticmethod
    def _score(tally: TopicCounts, nearness: float, rule: FrontierSettings) -> float:
        failure_rate = tally.failed / tally.attempts if tally.attempts else 0.0
        return (
            rule.explore / (1 + tally.attempts) + rule.distance * (1 - nearness) - rule.failure * failure_rate
        )

    def summary(self, rule: FrontierSettings | None = None) -> dict[str, int]:
        """Sizes for a status display; `retired` only when a rule says what retires a topic."""
        origins = [origin for _, origin in self.graph.nodes(data="origin")]
        kinds = [kind for _, _, kind in self.graph.edges(data="kind")]
        summary = {
            "topics": len(self),
            "seeds": origins.count("seed"),
            "scouted": origins.count("scouted"),
            "child_edges": kinds.count("child"),
            "similar_edges": kinds.count("similar"),
        }
        if rule is not None:
            summary["retired"] = sum(_retired(tally, rule) for tally in self._counts.values())
        return summary


def _retired(tally: TopicCounts, rule: FrontierSettings) -> bool:
    return tally.attempts >= rule.max_topic_attempts or tally.failure_streak >= rule.max_failure_streak
