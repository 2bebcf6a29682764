"""The topic graph: topics, their parent and similar edges, persistence, and the frontier rule."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from resyn.memory.embeddings import DIMENSIONS
from resyn.memory.records import TopicCounts
from resyn.memory.topics import TopicGraph
from resyn.memory.workspace import WorkspaceDamaged
from resyn.settings import FrontierSettings

RULE = FrontierSettings(explore=1.0, distance=1.0, failure=0.5, max_topic_attempts=3, max_failure_streak=2)
THRESHOLD = 0.75
ONE_VECTOR = base64.b64encode(np.zeros(DIMENSIONS, dtype="<f4").tobytes()).decode()


def unit(*components: float) -> np.ndarray:
    """A unit vector whose first coordinates point along `components` (the rest are zero)."""
    vector = np.zeros(DIMENSIONS, dtype=np.float32)
    vector[: len(components)] = components
    return vector / np.linalg.norm(vector)


def axis(index: int) -> np.ndarray:
    vector = np.zeros(DIMENSIONS, dtype=np.float32)
    vector[index] = 1.0
    return vector


def seeded(*names: str) -> TopicGraph:
    """A graph of unrelated seed topics (orthogonal vectors, so no similar edges)."""
    topics = TopicGraph()
    for index, name in enumerate(names):
        topics.add_topic(name, axis(index), origin="seed", parent=None, similar_threshold=THRESHOLD)
    return topics


def with_a_scouted_child() -> TopicGraph:
    """The seeds "logic puzzles" and "graph colouring", and "knights and knaves" scouted as a child of
    "logic puzzles", close enough to it for a similar edge."""
    topics = seeded("logic puzzles", "graph colouring")
    topics.add_topic(
        "knights and knaves",
        unit(9, 1),
        origin="scouted",
        parent="logic puzzles",
        similar_threshold=THRESHOLD,
    )
    return topics


def unrelated(vectors: np.ndarray) -> np.ndarray:
    """No accepted environment resembles anything."""
    return np.zeros(len(vectors), dtype=np.float32)


def test_topics_keep_their_origin_and_insertion_order() -> None:
    topics = TopicGraph()
    assert topics.add_topic(
        "graph colouring", axis(0), origin="seed", parent=None, similar_threshold=THRESHOLD
    )
    assert topics.add_topic(
        "knights and knaves", axis(1), origin="seed", parent=None, similar_threshold=THRESHOLD
    )

    assert len(topics) == 2
    assert topics.names() == ["graph colouring", "knights and knaves"]
    assert topics.graph.nodes["knights and knaves"] == {"origin": "seed", "parent": None, "order": 1}
    assert topics.vectors.dtype == np.float32
    assert np.array_equal(topics.vectors, np.stack([axis(0), axis(1)]))


def test_a_name_is_known_by_its_normalised_spelling() -> None:
    topics = seeded("Graph  Colouring ")

    assert "  graph colouring" in topics
    assert "GRAPH\tCOLOURING" in topics
    assert "graph colourings" not in topics
    added = topics.add_topic(
        "graph colouring", axis(5), origin="scouted", parent=None, similar_threshold=THRESHOLD
    )
    assert not added
    assert topics.names() == ["Graph Colouring"]
    assert np.array_equal(topics.vectors, axis(0)[None, :])


def test_a_scouted_topic_hangs_from_its_known_parent() -> None:
    topics = seeded("Logic Puzzles")
    topics.add_topic(
        "liar puzzles", axis(1), origin="scouted", parent="logic puzzles", similar_threshold=THRESHOLD
    )
    topics.add_topic("sudoku", axis(2), origin="scouted", parent="crosswords", similar_threshold=THRESHOLD)

    assert topics.graph.edges["Logic Puzzles", "liar puzzles"] == {"kind": "child"}
    assert topics.graph.nodes["liar puzzles"]["parent"] == "Logic Puzzles"
    assert topics.graph.nodes["sudoku"]["parent"] == "crosswords"  # unknown parent: recorded, no edge
    assert topics.graph.in_degree("sudoku") == 0
    assert topics.graph.number_of_edges() == 1


def test_similar_edges_join_a_new_topic_to_each_known_topic_above_the_threshold() -> None:
    topics = TopicGraph()
    topics.add_topic("shortest paths", unit(1, 0), origin="seed", parent=None, similar_threshold=THRESHOLD)
    topics.add_topic(
        "minimum spanning trees", unit(0, 1), origin="seed", parent=None, similar_threshold=THRESHOLD
    )
    # cosine 0.8 to "shortest paths", 0.6 to "minimum spanning trees"
    topics.add_topic("weighted graphs", unit(4, 3), origin="seed", parent=None, similar_threshold=THRESHOLD)

    edges = list(topics.graph.edges(data=True))
    assert len(edges) == 1
    source, target, data = edges[0]
    assert (source, target, data["kind"]) == ("weighted graphs", "shortest paths", "similar")
    assert data["similarity"] == pytest.approx(0.8)


def test_a_child_similar_to_its_parent_has_both_edges() -> None:
    topics = seeded("graph colouring")
    topics.add_topic(
        "edge colouring", unit(9, 1), origin="scouted", parent="graph colouring", similar_threshold=THRESHOLD
    )

    assert topics.graph.edges["graph colouring", "edge colouring"]["kind"] == "child"
    assert topics.graph.edges["edge colouring", "graph colouring"]["kind"] == "similar"


def test_nearest_names_the_most_similar_known_topics_nearest_first() -> None:
    assert TopicGraph().nearest(axis(0)) == []

    topics = seeded("cellular automata", "cryptarithms")
    [(name, similarity)] = topics.nearest(unit(1, 3))
    assert name == "cryptarithms" and similarity == pytest.approx(3 / np.sqrt(10))
    [(name, similarity)] = topics.nearest(unit(5, 1))
    assert name == "cellular automata" and similarity == pytest.approx(5 / np.sqrt(26))

    assert [name for name, _ in topics.nearest(unit(1, 3), count=5)] == ["cryptarithms", "cellular automata"]
    assert [name for name, _ in topics.nearest(unit(1, 3), among=["Cellular  Automata", "unknown"])] == [
        "cellular automata"
    ]


def test_the_vector_matrix_grows_past_its_initial_capacity() -> None:
    topics = seeded(*(f"topic {index}" for index in range(40)))

    assert topics.vectors.shape == (40, DIMENSIONS)
    assert np.array_equal(topics.vectors, np.eye(DIMENSIONS, dtype=np.float32)[:40])


def test_a_saved_graph_loads_back_equal_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    topics = with_a_scouted_child()
    path = tmp_path / "state" / "topics.json"

    topics.save(path)
    again = TopicGraph.load(path)

    assert [file.name for file in path.parent.iterdir()] == ["topics.json"]
    assert again.names() == topics.names()
    assert sorted(again.graph.edges(data=True)) == sorted(topics.graph.edges(data=True))
    assert dict(again.graph.nodes(data=True)) == dict(topics.graph.nodes(data=True))
    assert again.vectors.dtype == np.float32
    assert np.array_equal(again.vectors, topics.vectors)
    assert again.add_topic(
        "sudoku", axis(7), origin="scouted", parent="Logic Puzzles", similar_threshold=THRESHOLD
    )
    assert again.graph.edges["logic puzzles", "sudoku"]["kind"] == "child"


def test_a_missing_file_loads_as_an_empty_graph(tmp_path: Path) -> None:
    topics = TopicGraph.load(tmp_path / "topics.json")

    assert len(topics) == 0
    assert topics.names() == []


@pytest.mark.parametrize(
    "damage",
    [
        lambda text: text[: len(text) // 2],  # truncated
        lambda text: "not json at all",
        lambda text: json.dumps({**json.loads(text), "vectors": ONE_VECTOR}),  # two topics, one vector
        lambda text: json.dumps({**json.loads(text), "version": 99}),
        lambda text: "[1, 2, 3]",
    ],
    ids=["truncated", "not-json", "vectors-mismatch", "unknown-version", "not-an-object"],
)
def test_an_unreadable_file_is_workspace_damage_naming_it(
    tmp_path: Path, damage: Callable[[str], str]
) -> None:
    path = tmp_path / "topics.json"
    seeded("graph colouring", "sudoku").save(path)
    path.write_text(damage(path.read_text()))

    with pytest.raises(WorkspaceDamaged, match=r"topics\.json: damaged .*; restore it from a backup"):
        TopicGraph.load(path)


def test_counts_match_normalised_names_and_default_to_zero() -> None:
    topics = seeded("Graph Colouring", "sudoku")
    topics.set_counts(
        {
            "graph  colouring": TopicCounts(attempts=2, accepted=1, rejections={"invalid": 1}),
            "nonogram": TopicCounts(5),
        }
    )

    assert topics.counts("GRAPH COLOURING") == TopicCounts(attempts=2, accepted=1, rejections={"invalid": 1})
    assert topics.counts("sudoku") == TopicCounts()
    with pytest.raises(KeyError):
        topics.counts("nonogram")


def test_the_frontier_prefers_unexplored_topics() -> None:
    topics = seeded("explored", "fresh")
    topics.set_counts({"explored": TopicCounts(attempts=2, accepted=2)})

    assert topics.frontier(2, RULE, unrelated) == ["fresh", "explored"]


def test_the_frontier_prefers_topics_far_from_accepted_environments() -> None:
    topics = seeded("near", "far")
    accepted = np.stack([unit(1, 0.1)])
    queried: list[np.ndarray] = []

    def similarity_to_accepted(vectors: np.ndarray) -> np.ndarray:
        queried.append(vectors)
        return (vectors @ accepted.T).max(axis=1)

    assert topics.frontier(2, RULE, similarity_to_accepted) == ["far", "near"]
    assert np.array_equal(queried[0], topics.vectors)


def test_the_frontier_clips_similarity_to_zero_and_one() -> None:
    topics = seeded("first", "anti-similar")

    # unclipped, -0.5 would lift "anti-similar" above "first"; clipped, they tie and "first" wins
    assert topics.frontier(2, RULE, lambda vectors: np.array([0.0, -0.5])) == ["first", "anti-similar"]
    assert topics.frontier(2, RULE, lambda vectors: np.array([1.0, 1.7])) == ["first", "anti-similar"]


def test_the_frontier_penalises_a_failing_topic() -> None:
    topics = seeded("failing", "succeeding")
    topics.set_counts(
        {
            "failing": TopicCounts(attempts=2, accepted=1, rejections={"invalid": 1}, failure_streak=1),
            "succeeding": TopicCounts(attempts=2, accepted=2),
        }
    )

    assert topics.frontier(2, RULE, unrelated) == ["succeeding", "failing"]


def test_topics_retire_after_max_attempts_or_a_failure_streak() -> None:
    topics = seeded("worn out", "hopeless", "open")
    topics.set_counts(
        {
            "worn out": TopicCounts(attempts=3, accepted=3),
            "hopeless": TopicCounts(attempts=2, rejections={"unsolvable": 2}, failure_streak=2),
        }
    )

    assert topics.frontier(3, RULE, unrelated) == ["open"]
    assert topics.untried_count() == 1
    assert topics.summary(RULE)["retired"] == 2


def test_in_flight_topics_are_excluded_by_normalised_name() -> None:
    topics = seeded("graph colouring", "sudoku")

    assert topics.frontier(2, RULE, unrelated, exclude={" Graph COLOURING"}) == ["sudoku"]
    assert topics.untried_count(exclude={"SUDOKU", "graph colouring"}) == 0
    assert topics.untried_count(exclude={"SUDOKU"}) == 1
    assert topics.frontier(2, RULE, unrelated, exclude={"SUDOKU", "graph colouring"}) == []


def test_ties_go_to_the_earlier_topic_every_time() -> None:
    names = [f"topic {index}" for index in range(10)]
    topics = seeded(*names)

    picks = {tuple(topics.frontier(4, RULE, unrelated)) for _ in range(5)}

    assert picks == {tuple(names[:4])}


def test_the_summary_counts_topics_and_edges_by_kind() -> None:
    topics = with_a_scouted_child()
    topics.add_topic("sudoku", axis(3), origin="scouted", parent="logic puzzles", similar_threshold=THRESHOLD)

    assert topics.summary() == {"topics": 4, "seeds": 2, "scouted": 2, "child_edges": 2, "similar_edges": 1}
