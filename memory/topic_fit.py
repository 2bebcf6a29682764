"""Whether an environment stays on the topic it was asked for.

The environment's own words for what it is — its TOPIC, NAME and DESCRIPTION — are embedded
beside the asked topic, and their cosine is compared with `synthesis.min_topic_similarity`.
Measured with all-MiniLM-L6-v2: the twelve exemplars against their own TOPIC score 0.67–0.90
(the scripted world's environments 0.63 and up), an exemplar against another exemplar's topic
0.12 on average (at most 0.48, grid navigation against lattice paths), and a list puzzle
written for "unnamed topic" against "invariants with queue simulations" 0.02. The default,
0.40, rejects only clear drift.
"""

from __future__ import annotations

from dataclasses import dataclass

from resyn.memory.embeddings import Embedder


def environment_topic_text(constants: dict[str, str]) -> str:
    """What an environment says it is about: "TOPIC. name in words: DESCRIPTION"."""
    name = constants.get("NAME", "").replace("-", " ")
    return f"{constants.get('TOPIC', '')}. {name}: {constants.get('DESCRIPTION', '')}"


@dataclass(frozen=True)
class TopicFit:
    asked: str
    written: str  # the environment's TOPIC
    similarity: float
    threshold: float

    @property
    def on_topic(self) -> bool:
        return self.similarity >= self.threshold

    @property
    def reason(self) -> str:
        return (
            f"off topic: written for {self.written!r}, asked for {self.asked!r} "
            f"(cosine {self.similarity:.2f} < {self.threshold:.2f})"
        )


def topic_fit(embedder: Embedder, asked: str, constants: dict[str, str], threshold: float) -> TopicFit:
    """How close the environment with these constants is to the asked topic (unit vectors: the dot
    product is the cosine)."""
    environment, topic = embedder.embed([environment_topic_text(constants), asked])
    similarity = round(float(environment @ topic), 4)
    return TopicFit(asked, constants.get("TOPIC", ""), similarity, threshold)
