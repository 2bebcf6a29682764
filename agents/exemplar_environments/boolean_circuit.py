"""Boolean circuits: evaluate AND/OR/XOR/NOT gates, or find inputs that give a target output.

Circuits are random DAGs over inputs x1..xn. Low levels ask for the output bits on given
inputs; from difficulty 3 some instances instead plant an input assignment and ask for any
assignment reaching its outputs, which verify checks by simulating the circuit.
"""

import random

NAME = "boolean-circuit"
TOPIC = "boolean circuit evaluation and satisfaction"
DESCRIPTION = "Evaluate a small boolean circuit, or find inputs that make its outputs take given values."

MAX_ANSWER_CHARS = 200
OPS = ["AND", "OR", "XOR", "AND", "OR", "XOR", "NOT"]


def _simulate(inputs: list[int], gates: list[list]) -> dict[str, int]:
    wires = {f"x{i + 1}": bit for i, bit in enumerate(inputs)}
    for i, (op, a, b) in enumerate(gates):
        va, vb = wires[a], wires.get(b, 0)
        out = {"AND": va & vb, "OR": va | vb, "XOR": va ^ vb, "NOT": 1 - va}[op]
        wires[f"g{i + 1}"] = out
    return wires


def _circuit(rng: random.Random, n_inputs: int, n_gates: int) -> list[list]:
    wires = [f"x{i + 1}" for i in range(n_inputs)]
    gates: list[list] = []
    for i in range(n_gates):
        op = rng.choice(OPS)
        recent = wires[-3:] if rng.random() < 0.6 else wires  # lean on recent wires for depth
        a = rng.choice(recent)
        b = "" if op == "NOT" else rng.choice([w for w in wires if w != a])
        gates.append([op, a, b])
        wires.append(f"g{i + 1}")
    return gates


def _bits(text: str, length: int) -> list[int] | None:
    cleaned = "".join(ch for ch in text if ch not in " ,\t\n")
    if len(cleaned) != length or any(ch not in "01" for ch in cleaned):
        return None
    return [int(ch) for ch in cleaned]


def generate(seed: int, difficulty: int) -> dict:
    difficulty = max(1, min(5, int(difficulty)))
    rng = random.Random(seed * 1000 + difficulty)
    n_inputs, n_gates = 2 + difficulty, 2 + 2 * difficulty
    n_outputs = 3 + difficulty // 2  # at least 3 bits, so another instance's answer rarely fits by chance
    mode = "find" if difficulty >= 3 and rng.random() < 0.5 else "evaluate"
    for _ in range(100):
        gates = _circuit(rng, n_inputs, n_gates)
        inputs = [rng.randint(0, 1) for _ in range(n_inputs)]
        outputs = sorted([*rng.sample(range(1, n_gates), n_outputs - 1), n_gates])
        names = [f"g{i}" for i in outputs]
        wires = _simulate(inputs, gates)
        target = [wires[name] for name in names]
        listing = "\n".join(
            f"g{i + 1} = NOT {a}" if op == "NOT" else f"g{i + 1} = {a} {op} {b}"
            for i, (op, a, b) in enumerate(gates)
        )
        if mode == "evaluate":
            given = ", ".join(f"x{i + 1} = {bit}" for i, bit in enumerate(inputs))
            task = (
                f"Inputs: {given}.\n\nWhat are the values of {', '.join(names)}? Answer with {len(names)} "
                f"bits (0 or 1) in that order, written together with no spaces or separators."
            )
            witness = "".join(str(bit) for bit in target)
        else:
            want = ", ".join(f"{name} = {bit}" for name, bit in zip(names, target, strict=True))
            task = (
                f"Find values for the inputs x1..x{n_inputs} such that {want}. Any such assignment is "
                f"accepted. Answer with {n_inputs} bits (0 or 1) for x1, x2, ..., x{n_inputs} in that order, "
                f"written together with no spaces or separators."
            )
            witness = "".join(str(bit) for bit in inputs)
        question = (
            f"A boolean circuit has inputs x1..x{n_inputs} and gates computed in order "
            f"(AND, OR, XOR are the usual bitwise operations on 0/1, NOT flips a bit):\n\n{listing}\n\n{task}"
        )
        if witness not in question:
            break
    meta = {
        "mode": mode,
        "n_inputs": n_inputs,
        "n_gates": n_gates,
        "gates": gates,
        "outputs": names,
        "target": target,
    }
    return {"question": question, "witness": witness, "meta": meta}


def verify(instance: dict, answer: str) -> float:
    try:
        if not isinstance(answer, str) or len(answer) > MAX_ANSWER_CHARS:
            return 0.0
        meta = instance["meta"]
        target = [int(bit) for bit in meta["target"]]
        if meta["mode"] == "evaluate":
            return 1.0 if _bits(answer, len(target)) == target else 0.0
        inputs = _bits(answer, int(meta["n_inputs"]))
        if inputs is None:
            return 0.0
        wires = _simulate(inputs, meta["gates"])
        return 1.0 if [wires[name] for name in meta["outputs"]] == target else 0.0
    except Exception:
        return 0.0
