"""A short GRPO run with TRL on a `resyn export`: rewards from the environments' own `verify`.

    python examples/train_grpo.py out/ --model Qwen/Qwen2.5-0.5B-Instruct --steps 3

reads `out/train.parquet` (or `.jsonl`), scores every completion with `resyn.tools.rewards.trl_reward`
against `out/environments/`, and prints, per step, the mean reward and the share of completions that
gave an answer between <answer> and </answer> at all. Needs `pip install 'resyn[train]'` (TRL).

The export's prompt asks to think step by step, then answer in tags. A 7B instruct model does; a
very small one rambles and never writes the tags, so every reward is 0 and nothing is learned.
`--prompt brief` (the default) puts a system message and three example turns before each prompt,
asking for the tagged answer alone: SmolLM2-135M then tags about half its answers. `--prompt export`
trains on the prompts as exported (the paper's setting). See docs/training.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from resyn.contract import extract_answer
from resyn.tools import rewards

if TYPE_CHECKING:
    from datasets import Dataset
    from trl import GRPOTrainer

BRIEF_SYSTEM_PROMPT = (
    "Reply with the final answer only, between <answer> and </answer>, like the examples. No explanation."
)
BRIEF_EXAMPLES = [  # three turns that show the format (a 135M model needs all three to follow it)
    {"role": "user", "content": "Tom has 3 apples and buys 4 more. How many apples does he have?"},
    {"role": "assistant", "content": "<answer>7</answer>"},
    {"role": "user", "content": "List the letters c, a, b in alphabetical order, separated by commas."},
    {"role": "assistant", "content": "<answer>a, b, c</answer>"},
    {"role": "user", "content": "Is 9 an even number? Answer yes or no."},
    {"role": "assistant", "content": "<answer>no</answer>"},
]


class SetupError(Exception):
    """Something the user has to fix before a run can start; reported in one line."""


class OneLineErrors(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (see --help)\n")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = OneLineErrors(description=__doc__.split("\n\n")[0])
    parser.add_argument("export_dir", type=Path, help="a `resyn export` directory")
    parser.add_argument("--model", required=True, help="model name on the Hub, or a local directory")
    parser.add_argument("--steps", type=int, default=3, help="optimizer steps (default 3)")
    parser.add_argument("--split", default="train", help="the export's split to train on (default train)")
    parser.add_argument("--limit", type=int, default=None, help="use only the split's first N rows")
    parser.add_argument("--prompt", choices=("brief", "export"), default="brief", help="see the docstring")
    parser.add_argument("--num-generations", type=int, default=4, help="completions per prompt (default 4)")
    parser.add_argument("--batch-size", type=int, default=8, help="completions per device and pass (8)")
    parser.add_argument("--gradient-accumulation-steps", type=int, default=1, help="passes per step (1)")
    parser.add_argument("--max-completion-length", type=int, default=256, help="tokens (default 256)")
    parser.add_argument("--learning-rate", type=float, default=1e-6)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--vllm", action="store_true", help="generate with vLLM, colocated (GPU only)")
    parser.add_argument("--output-dir", type=Path, default=Path("grpo-out"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.steps < 1 or (args.limit is not None and args.limit < 1):
        parser.error("--steps and --limit must be at least 1")
    if (
        args.num_generations < 2
        or (args.batch_size * args.gradient_accumulation_steps) % args.num_generations
    ):
        parser.error("--num-generations must be at least 2 and divide a step's completions")
    return args


def load_split(export_dir: Path, split: str, limit: int | None) -> Dataset:
    """The split's rows as `datasets` reads them, Parquet if the export has it, else JSONL."""
    import datasets

    for extension, builder in (("parquet", "parquet"), ("jsonl", "json")):
        path = export_dir / f"{split}.{extension}"
        if path.is_file():
            rows = datasets.load_dataset(builder, data_files=str(path), split="train")
            return rows.select(range(min(limit, len(rows)))) if limit else rows
    raise SetupError(
        f"no {split}.parquet or {split}.jsonl in {export_dir}: is it a `resyn export` directory?"
    )


def with_brief_prompt(rows: Dataset) -> Dataset:
    """Each prompt after a system message and three example turns that ask for the tagged answer alone."""
    system = [{"role": "system", "content": BRIEF_SYSTEM_PROMPT}]
    return rows.map(lambda row: {"prompt": system + BRIEF_EXAMPLES + row["prompt"]})


def answer_given(completions: list[Any], **_: Any) -> list[float]:
    """1.0 where a completion has an <answer> pair: logged beside the reward, weighted 0 in training."""
    texts = [c if isinstance(c, str) else c[-1]["content"] for c in completions]
    return [float(extract_answer(text) is not None) for text in texts]


def build_trainer(args: argparse.Namespace) -> GRPOTrainer:
    try:
        import torch
        from transformers import TrainerCallback
        from trl import GRPOConfig, GRPOTrainer
    except ImportError as error:
        raise SetupError(f"{error.name} is not installed: pip install 'resyn[train]'") from None

    class PrintRewards(TrainerCallback):
        def on_log(self, _args: Any, state: Any, _control: Any, logs: dict | None = None, **_: Any) -> None:
            if logs and "reward" in logs:
                answered = logs.get("rewards/answer_given/mean", float("nan"))
                print(
                    f"step {state.global_step}: reward mean {logs['reward']:.3f} "
                    f"(std {logs.get('reward_std', float('nan')):.3f}), answered {answered:.0%}",
                    flush=True,
                )

    environments = args.export_dir / "environments"
    if not environments.is_dir():
        raise SetupError(f"no environments/ in {args.export_dir}: the rewards need the export's sources")
    rows = load_split(args.export_dir, args.split, args.limit)
    if args.prompt == "brief":
        rows = with_brief_prompt(rows)
    rewards.configure(environments)
    bf16 = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    config = GRPOConfig(
        output_dir=str(args.output_dir),
        model_init_kwargs={"dtype": "bfloat16" if bf16 else "float32"},  # TRL's default is float32
        max_steps=args.steps,
        per_device_train_batch_size=args.batch_size,
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        num_generations=args.num_generations,
        max_completion_length=args.max_completion_length,
        learning_rate=args.learning_rate,
        temperature=args.temperature,
        reward_weights=[1.0, 0.0],  # answer_given is only watched
        bf16=bf16,
        use_vllm=args.vllm,
        vllm_mode="colocate",
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        seed=args.seed,
    )
    try:
        return GRPOTrainer(
            model=args.model,
            reward_funcs=[rewards.trl_reward, answer_given],
            args=config,
            train_dataset=rows,
            callbacks=[PrintRewards()],
        )
    except OSError as error:  # transformers: not a local directory, and not on the Hub (or offline)
        raise SetupError(f"cannot load model {args.model}: {str(error).splitlines()[0]}") from None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        build_trainer(args).train()
    except (SetupError, rewards.RewardSetupError) as error:  # RewardSetupError: a row cannot be scored
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
