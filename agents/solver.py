"""The solver: answers one question under the contract's `<answer>` convention."""

from __future__ import annotations

from dataclasses import dataclass

from langchain_core.messages import HumanMessage, SystemMessage

from resyn.agents.llm import ChatEndpoint, Reply, ask
from resyn.agents.prompts import prompt
from resyn.contract import ANSWER_INSTRUCTION, extract_answer


@dataclass
class Answer:
    """The solver's final answer (None when the reply had no <answer> pair) and the reply."""

    answer: str | None
    reply: Reply


def solver_prompt(question: str) -> str:
    return f"{question}\n\n{ANSWER_INSTRUCTION}"


async def answer(endpoint: ChatEndpoint, question: str) -> Answer:
    messages = [SystemMessage(prompt("solver_system")), HumanMessage(solver_prompt(question))]
    reply = await ask(endpoint, messages)
    return Answer(extract_answer(reply.text), reply)
