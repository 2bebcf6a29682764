"""examples/train_grpo.py: one GRPO step with TRL on an export, on a tiny model built offline.

A randomly initialised tiny model never writes `<answer>…</answer>`, so every reward would be 0 and
nothing would show that rewards vary. The model here is built from a config with weights set by
hand: a bigram model over a vocabulary of the answer tags and a few candidate answers (the rows'
witnesses and one wrong answer), which, asked anything, answers `<answer>X</answer>` with X drawn
at random. So it answers in the format, as an instruct model does, and is right only by chance; TRL
samples the completions, and the rewards are the environments' own verify of what it sampled.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import math
import os
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from example_library import build_example_library

from resyn.contract import extract_answer
from resyn.evals.export import ExportOptions, export_library
from resyn.settings import Settings
from resyn.tools import rewards
from resyn.tools.kernel_pool import KernelPool
from resyn.tools.reasoning_gym_adapter import read_rows

pytest.importorskip("trl", reason="TRL is not installed: pip install -e '.[train]'")
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing here may reach for the hub
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

SCRIPT = Path(__file__).parent.parent / "examples" / "train_grpo.py"
WRONG = "no"  # a candidate answer that is no row's witness
SPECIAL = ["<pad>", "<eos>", "<unk>", "<|system|>", "<|user|>", "<|assistant|>"]
TAGS = ["<answer>", "</answer>"]
CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>{{ message['content'] }}<eos>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("train_grpo", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build_guessing_model(candidates: list[str], directory: Path) -> None:
    """Saves a tokenizer and a LlamaForCausalLM that answers `<answer>X</answer><eos>`, X uniform over
    `candidates`. Each layer adds nothing (zero output projections), so the logits depend on the
    current token alone: a one-hot embedding read out by lm_head, which holds the bigram table."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    vocab = {token: index for index, token in enumerate(SPECIAL + TAGS + candidates)}
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    core.decoder = decoders.Fuse()  # "<answer>", "7", "</answer>" decode to "<answer>7</answer>"
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        pad_token="<pad>",
        eos_token="<eos>",
        unk_token="<unk>",
        additional_special_tokens=SPECIAL[3:],
    )
    tokenizer.add_tokens(TAGS)  # matched inside text, kept when decoding (not special)
    tokenizer.chat_template = CHAT_TEMPLATE

    size, width = len(vocab), len(vocab) + len(vocab) % 2  # rotary embeddings want an even width
    config = LlamaConfig(
        vocab_size=size,
        hidden_size=width,
        intermediate_size=4,
        num_hidden_layers=1,
        num_attention_heads=1,
        num_key_value_heads=1,
        head_dim=width,
        tie_word_embeddings=False,
        pad_token_id=vocab["<pad>"],
        eos_token_id=vocab["<eos>"],
        bos_token_id=None,
    )
    model = LlamaForCausalLM(config)
    never = -30.0
    follows = torch.full((size, size), never)  # follows[current, next]: the next token's logit
    follows[:, vocab["<eos>"]] = 0.0
    follows[vocab["<|assistant|>"], :] = never
    follows[vocab["<|assistant|>"], vocab["<answer>"]] = 0.0
    follows[vocab["<answer>"], :] = never
    for candidate in candidates:
        follows[vocab["<answer>"], vocab[candidate]] = 0.0
        follows[vocab[candidate], :] = never
        follows[vocab[candidate], vocab["</answer>"]] = 0.0
    with torch.no_grad():
        model.model.embed_tokens.weight.copy_(torch.eye(size, width))
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        readout = torch.zeros(size, width)
        readout[:, :size] = follows.T / math.sqrt(width)  # the final RMSNorm scales one-hot by √width
        model.lm_head.weight.copy_(readout)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)


@pytest.fixture(scope="module")
async def export_dir(pool: KernelPool, settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Path:
    library = build_example_library(tmp_path_factory.mktemp("workspace"))
    out = tmp_path_factory.mktemp("export") / "out"
    await export_library(library, ExportOptions(out_dir=out, per_env=2, seed=3), settings, pool)
    return out


def witness(row: dict) -> str:
    return json.loads(row["reward_model"]["ground_truth"])["instance"]["witness"]


def test_one_grpo_step_gets_varying_rewards_from_verify(
    export_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    rows = read_rows(export_dir / "train.jsonl")[:2]  # the script's --limit 2: the step's two prompts
    witnesses = {witness(row) for row in rows}
    assert WRONG not in witnesses
    build_guessing_model(sorted(witnesses | {WRONG}), tmp_path / "model")

    calls: list[dict[str, Any]] = []
    trl_reward = rewards.trl_reward

    @functools.wraps(trl_reward)  # TRL logs a reward function under its __name__
    def recording_trl_reward(prompts: list, completions: list, **kwargs: Any) -> list[float]:
        scores = trl_reward(prompts, completions, **kwargs)
        calls.append({"completions": completions, "kwargs": kwargs, "scores": scores})
        return scores

    monkeypatch.setattr(rewards, "trl_reward", recording_trl_reward)
    script = load_script()
    arguments = [str(export_dir), "--model", str(tmp_path / "model"), "--steps", "1", "--limit", "2"]
    arguments += ["--num-generations", "8", "--batch-size", "16", "--max-completion-length", "8"]
    args = script.parse_args([*arguments, "--output-dir", str(tmp_path / "grpo")])
    trainer = script.build_trainer(args)
    try:
        trainer.train()
    finally:
        rewards.default_scorer().close()

    [call] = calls  # one step, one generation batch: 2 prompts × 8 completions
    assert {"completion_ids", "trainer_state", "reward_model", "environment_id"} <= set(call["kwargs"])
    truths = [json.loads(entry["ground_truth"]) for entry in call["kwargs"]["reward_model"]]
    answers = [extract_answer(completion[-1]["content"]) for completion in call["completions"]]
    witnesses_asked = [truth["instance"]["witness"] for truth in truths]
    expected = [float(answer == asked) for answer, asked in zip(answers, witnesses_asked, strict=True)]
    assert call["scores"] == expected  # verify's verdicts on what the model sampled
    assert set(call["scores"]) == {0.0, 1.0}

    [logged] = [entry for entry in trainer.state.log_history if "reward" in entry]
    assert logged["reward"] == pytest.approx(sum(expected) / len(expected))
    assert logged["reward_std"] > 0 and logged["rewards/answer_given/mean"] == 1.0
    assert f"step 1: reward mean {logged['reward']:.3f}" in capsys.readouterr().out


def test_an_export_without_its_environments_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    (tmp_path / "train.jsonl").write_text("")
    assert load_script().main([str(tmp_path), "--model", "unused"]) == 2
    error = capsys.readouterr().err
    assert error == f"error: no environments/ in {tmp_path}: the rewards need the export's sources\n"
