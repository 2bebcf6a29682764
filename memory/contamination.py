"""The contamination guard: is a synthesized question a near-duplicate of a BBH or BBEH benchmark input?

Reads the benchmarks where they lie, in their official layouts (`bbh/<task>.json`,
`bbeh/bbeh_<task>.json`, each `{"examples": [{"input", "target"}, ...]}`); nothing is copied. Embedding
all ~11,000 inputs takes minutes on a laptop CPU, so the index is cached in a directory the caller
gives and reused while the files keep their names, sizes and modification times. The cache holds
vectors and (benchmark, task, example) numbers only: snippets are read back from the data on a match.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from resyn.memory.embeddings import DIMENSIONS, Embedder
from resyn.memory.vector_index import VectorIndex

# bbh/cot-prompts/ holds .txt files and bbeh/mini.json is a subset of the bbeh_*.json files: neither matches.
TASK_FILES = {"bbh": "*.json", "bbeh": "bbeh_*.json"}
# MiniLM was trained on 128 word pieces and reads 256 at most, so it only ever sees the head of a long
# input (BBEH's run to 30,000 characters). At ~4 characters a word piece, 512 characters is what it was
# trained on, and cutting here rather than at 256 pieces more than halves the one-off embedding time.
MAX_INPUT_CHARS = 512
SNIPPET_CHARS = 160
CACHE_FORMAT = 1  # bump when what is cached changes meaning


class BenchmarkDataMissing(Exception):
    """The benchmark directory is missing, or holds no BBH/BBEH task files."""


@dataclass(frozen=True)
class ContaminationMatch:
    question: str  # the checked question that matched
    benchmark: str  # "bbh" or "bbeh"
    task: str  # the task file's stem, e.g. "date_understanding" or "bbeh_zebra_puzzles"
    example: int  # position in the task file's "examples"
    similarity: float  # cosine, rounded to 3 places
    snippet: str  # the head of the benchmark input, whitespace collapsed


@dataclass(frozen=True)
class _Source:
    benchmark: str
    task: str
    example: int


class ContaminationGuard:
    """`check(questions)` → the closest benchmark input at or above `threshold` cosine, else None."""

    def __init__(
        self,
        data_dir: Path,
        *,
        threshold: float,
        cache_dir: Path | None = None,
        tasks: Collection[str] | None = None,
        embedder: Embedder | None = None,
    ) -> None:
        """`tasks` restricts the guard to those task files (stems); `cache_dir=None` caches nothing."""
        self.data_dir = data_dir
        self.threshold = threshold
        self.embedder = embedder or Embedder()
        files = _task_files(data_dir, tasks)
        fingerprint = _fingerprint(files)
        cached = _load_cache(cache_dir, fingerprint) if cache_dir else None
        if cached is None:
            cached = self._embed_benchmark(files)
            if cache_dir:
                _save_cache(cache_dir, fingerprint, *cached)
        self._index, self._sources = cached

    def __len__(self) -> int:
        return len(self._sources)

    def check(self, questions: list[str]) -> ContaminationMatch | None:
        vectors = self.embedder.embed([question[:MAX_INPUT_CHARS] for question in questions])
        hits = [
            (found[0][1], found[0][0], question)
            for question, found in zip(questions, self._index.nearest(vectors, 1), strict=True)
            if found
        ]
        similarity, position, question = max(hits, default=(0.0, -1, ""))
        if similarity < self.threshold:
            return None
        source = self._sources[position]
        text = _examples(self.data_dir / source.benchmark / f"{source.task}.json")[source.example]["input"]
        snippet = " ".join(text.split())
        if len(snippet) > SNIPPET_CHARS:
            snippet = snippet[: SNIPPET_CHARS - 1] + "…"
        return ContaminationMatch(
            question, source.benchmark, source.task, source.example, round(similarity, 3), snippet
        )

    def _embed_benchmark(self, files: list[tuple[str, Path]]) -> tuple[VectorIndex, list[_Source]]:
        sources, texts = [], []
        for benchmark, path in files:
            for number, example in enumerate(_examples(path)):
                sources.append(_Source(benchmark, path.stem, number))
                texts.append(example["input"][:MAX_INPUT_CHARS])
        index = VectorIndex(DIMENSIONS)
        index.add(list(range(len(texts))), self.embedder.embed(texts))
        return index, sources


def _task_files(data_dir: Path, tasks: Collection[str] | None) -> list[tuple[str, Path]]:
    if not data_dir.is_dir():
        raise BenchmarkDataMissing(
            f"no benchmark data directory at {data_dir}: point expansion.benchmark_dir at the BBH/BBEH data"
        )
    files = [
        (benchmark, path)
        for benchmark, pattern in TASK_FILES.items()
        for path in sorted((data_dir / benchmark).glob(pattern))
        if tasks is None or path.stem in tasks
    ]
    if not files:
        among = f" among tasks {sorted(tasks)}" if tasks is not None else ""
        raise BenchmarkDataMissing(
            f"no BBH/BBEH task files{among} in {data_dir} (expected bbh/<task>.json or bbeh/bbeh_<task>.json)"
        )
    return files


def _examples(path: Path) -> list[dict[str, str]]:
    return json.loads(path.read_text(encoding="utf-8"))["examples"]


def _fingerprint(files: list[tuple[str, Path]]) -> str:
    digest = hashlib.sha256(f"{CACHE_FORMAT}:{MAX_INPUT_CHARS}\n".encode())
    for benchmark, path in files:
        stat = path.stat()
        digest.update(f"{benchmark}/{path.name}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _load_cache(cache_dir: Path, fingerprint: str) -> tuple[VectorIndex, list[_Source]] | None:
    try:
        stored = json.loads((cache_dir / "benchmark.json").read_text())
    except (OSError, ValueError):
        return None
    if stored.get("fingerprint") != fingerprint:
        return None
    sources = [_Source(*source) for source in stored["sources"]]
    index = VectorIndex.load(cache_dir / "benchmark.faiss", DIMENSIONS, set(range(len(sources))))
    return (index, sources) if index is not None else None


def _save_cache(cache_dir: Path, fingerprint: str, index: VectorIndex, sources: list[_Source]) -> None:
    cache_dir.mkdir(parents=True, exist_ok=True)
    (cache_dir / "benchmark.json").unlink(missing_ok=True)  # the old listing must not vouch for the new index
    index.save(cache_dir / "benchmark.faiss")
    listing = {
        "fingerprint": fingerprint,
        "sources": [[source.benchmark, source.task, source.example] for source in sources],
    }
    temporary = cache_dir / "benchmark.json.tmp"
    temporary.write_text(json.dumps(listing))
    temporary.replace(cache_dir / "benchmark.json")  # written last: a torn build is never taken as cached
