"""What each file and folder of a workspace is called on disk.

`Workspace` (memory/workspace.py) joins these names to its folder; damage reporting
(memory/damage.py) words its advice by them. They sit in a module of their own because both of
those need them and the workspace opens its files through damage reporting.
"""

LIBRARY = "library.sqlite"  # environments, attempts, jobs, trace events
CHECKPOINTS = "checkpoints.sqlite"  # LangGraph's checkpoints, what --resume continues from
TOPICS = "topics.json"  # the expansion jobs' topic graph
ENVIRONMENTS = "environments"  # the accepted environments' sources, one .py each
JOBS = "jobs"  # one log per expansion job
EVALS = "evals"  # one .jsonl per benchmark evaluation run
EXPAND_LOCK = "expand.lock"  # held by the one expansion job a workspace runs at a time
NOVELTY = "novelty.faiss"  # a cache of the accepted environments' vectors
BENCHMARK_INDEX = "benchmark-index"  # a cache of the embedded benchmark questions
