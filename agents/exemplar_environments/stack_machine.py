"""Stack machine tracing: run a small PUSH/ADD/SUB/MUL/DUP/SWAP/OVER/POP/JZ/JMP program.

Programs are a random straight-line prefix, from difficulty 3 a counted loop (JZ/JMP), and
at the top levels a suffix; the generator runs them to get the answer, the final top of
stack or the whole final stack.
"""

import random

NAME = "stack-machine"
TOPIC = "stack machine program tracing"
DESCRIPTION = "Trace a small stack-machine program with jumps and report its final stack."

MAX_ANSWER_CHARS = 500
# difficulty -> (prefix ops, loop iterations or 0, loop body segments, suffix ops, ask whole stack)
LEVELS = {
    1: (5, 0, 0, 0, False),
    2: (8, 0, 0, 0, True),
    3: (4, 3, 1, 0, False),
    4: (4, 4, 2, 2, True),
    5: (5, 6, 3, 3, True),
}
BODIES = [["PUSH {k}", "ADD"], ["PUSH {k}", "SUB"], ["PUSH {k}", "MUL"], ["OVER", "ADD"], ["DUP", "ADD"]]


def _run(program: list[str], limit: int = 10_000) -> list[int]:
    stack: list[int] = []
    pc = steps = 0
    while 0 <= pc < len(program) and steps < limit:
        op, *arg = program[pc].split()
        pc, steps = pc + 1, steps + 1
        if op == "PUSH":
            stack.append(int(arg[0]))
        elif op in ("ADD", "SUB", "MUL"):
            b, a = stack.pop(), stack.pop()
            stack.append(a + b if op == "ADD" else a - b if op == "SUB" else a * b)
        elif op == "DUP":
            stack.append(stack[-1])
        elif op == "OVER":
            stack.append(stack[-2])
        elif op == "SWAP":
            stack[-1], stack[-2] = stack[-2], stack[-1]
        elif op == "POP":
            stack.pop()
        elif (op == "JZ" and stack.pop() == 0) or op == "JMP":
            pc = int(arg[0])
    return stack


def _straight(rng: random.Random, program: list[str], count: int) -> None:
    """Append `count` random straight-line ops that are valid for, and change, the stack they meet."""
    for _ in range(count):
        stack = _run(program)
        choices = ["PUSH"] * 2 + (["DUP"] if stack else [])
        if len(stack) >= 2:
            a, b = stack[-2], stack[-1]
            choices += ["ADD", "OVER", "POP"] + (["MUL"] if abs(a * b) <= 400 else [])
            choices += ["SUB", "SWAP"] if a != b else []  # equal items: SWAP does nothing, SUB gives 0
        op = rng.choice(choices)
        program.append(f"PUSH {rng.randint(-9, 20)}" if op == "PUSH" else op)


def _parse(answer: str) -> list[int]:
    parts = [p.strip() for p in answer.strip().strip("[]").replace(",", " ").split()]
    if not parts or any(len(p) > 30 for p in parts):
        raise ValueError("bad answer")
    return [int(p) for p in parts]


def _program(rng: random.Random, difficulty: int) -> list[str]:
    n_prefix, loops, segments, n_suffix, _ = LEVELS[difficulty]
    program = [f"PUSH {rng.randint(1, 12)}"]
    _straight(rng, program, n_prefix - 1)
    if loops:
        # stack [..., acc] -> [..., n, acc]; each pass runs the body on acc, then decrements n
        program += [f"PUSH {loops}", "SWAP"]
        start = len(program)
        for body in rng.sample(BODIES, segments):
            program += [
                line.format(k=rng.randint(2, 3) if "MUL" in body else rng.randint(1, 9)) for line in body
            ]
        end = len(program) + 7
        program += ["SWAP", "PUSH 1", "SUB", "DUP", f"JZ {end}", "SWAP", f"JMP {start}", "POP"]
    _straight(rng, program, n_suffix)
    return program


def generate(seed: int, difficulty: int) -> dict:
    difficulty = max(1, min(5, int(difficulty)))
    rng = random.Random(seed * 1000 + difficulty)
    _, loops, _, _, whole = LEVELS[difficulty]
    for _ in range(100):
        program = _program(rng, difficulty)
        stack = _run(program)
        witness = ", ".join(str(x) for x in stack) if whole else str(stack[-1])
        pushed = {line.split()[1] for line in program if line.startswith("PUSH")}
        if witness not in pushed:  # an answer that is one of the pushed constants needs no tracing
            break
    listing = "\n".join(f"{i}: {line}" for i, line in enumerate(program))
    if whole:
        ask = (
            "Give the whole final stack, from bottom to top, as comma-separated integers "
            "(for example: 4, -2, 13). The stack at the end is never empty."
        )
    else:
        ask = "Give the value on top of the stack when the program halts, as one integer (for example: 13)."
    question = (
        "A stack machine starts with an empty stack and runs the program below from instruction 0, "
        "halting when it moves past the last instruction.\nPUSH n pushes n. ADD, SUB, MUL pop b (the top) "
        "then a and push a+b, a-b, a*b. DUP pushes a copy of the top. OVER pushes a copy of the second item "
        "from the top. SWAP exchanges the top two items. POP discards the top. JZ t pops the top and jumps "
        "to instruction t if it was 0 (otherwise continues). JMP t always jumps to instruction t.\n\n"
        f"{listing}\n\n{ask}"
    )
    meta = {
        "n_instructions": len(program),
        "loop_passes": loops,
        "program": program,
        "final_stack": stack,
        "whole_stack": whole,
    }
    return {"question": question, "witness": witness, "meta": meta}


def verify(instance: dict, answer: str) -> float:
    try:
        if not isinstance(answer, str) or len(answer) > MAX_ANSWER_CHARS:
            return 0.0
        meta = instance["meta"]
        stack = [int(x) for x in meta["final_stack"]]
        expected = stack if meta["whole_stack"] else stack[-1:]
        return 1.0 if _parse(answer) == expected else 0.0
    except Exception:
        return 0.0
