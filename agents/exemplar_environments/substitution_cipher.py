"""Substitution ciphers: decode a Caesar, affine or Vigenere ciphertext.

Low levels give the key; higher levels hide it and give a known-plaintext hint (the first
word or words) from which the key must be recovered before decoding the rest.
"""

import random

NAME = "substitution-cipher"
TOPIC = "classical cipher decoding"
DESCRIPTION = "Decode a Caesar, affine or Vigenere ciphertext from its key or a known-plaintext hint."

MAX_ANSWER_CHARS = 2000
A = ord("A")
_WORDS_TEXT = (
    "ACROSS AFTER AGAIN ANCHOR APPLE ARCHIVE AUTUMN BASKET BEFORE BORDER BRIDGE BRIGHT CABIN CANDLE "
    "CASTLE CIRCLE CLOUD COPPER CORNER DESERT DINNER DOCTOR DRAGON EAGLE EARLY ENGINE EVENING FABRIC "
    "FALCON FIELD FLOWER FOREST FROZEN GARDEN GENTLE GOLDEN HARBOR HIDDEN HOLLOW ISLAND JUNGLE "
    "KETTLE LADDER LANTERN LEMON LETTER LITTLE MARKET MEADOW MIRROR MORNING NARROW NEEDLE NORTH "
    "NUMBER OCEAN ORANGE PALACE PARROT PENCIL PLANET POCKET PURPLE QUIET RABBIT RIVER ROCKET SADDLE "
    "SCHOOL SECRET SHADOW SILVER SIMPLE SPIDER SPRING STONE STREAM SUMMER SUNSET TABLE TEMPLE "
    "THUNDER TIMBER TOWER TRAVEL VALLEY VELVET WAGON WINDOW WINTER WISDOM YELLOW ZEBRA"
)
WORDS = sorted(_WORDS_TEXT.split())
AFFINE_A = [3, 5, 7, 9, 11, 15, 17, 19, 21, 23, 25]
# difficulty -> (words, cipher choices, key given)
LEVELS = {
    1: (4, ["caesar"], True),
    2: (5, ["affine"], True),
    3: (6, ["vigenere"], True),
    4: (7, ["caesar", "affine"], False),
    5: (8, ["vigenere"], False),
}


def _encrypt(text: str, cipher: str, key: list[int]) -> str:
    out, i = [], 0
    for ch in text:
        if not ch.isalpha():
            out.append(ch)
            continue
        x = ord(ch) - A
        if cipher == "caesar":
            y = (x + key[0]) % 26
        elif cipher == "affine":
            y = (key[0] * x + key[1]) % 26
        else:
            y = (x + key[i % len(key)]) % 26
        out.append(chr(A + y))
        i += 1
    return "".join(out)


def _affine_unique(known: str, key: list[int]) -> bool:
    """Whether the known plaintext prefix pins down the affine key."""
    target = _encrypt(known, "affine", key)
    fits = [(a, b) for a in AFFINE_A for b in range(26) if _encrypt(known, "affine", [a, b]) == target]
    return len(fits) == 1


def generate(seed: int, difficulty: int) -> dict:
    difficulty = max(1, min(5, int(difficulty)))
    rng = random.Random(seed * 1000 + difficulty)
    n_words, ciphers, key_given = LEVELS[difficulty]
    cipher = rng.choice(ciphers)
    words = [rng.choice(WORDS) for _ in range(n_words)]
    plain = " ".join(words)
    if cipher == "caesar":
        key = [rng.randint(1, 25)]
        rule = "Caesar cipher: each letter is shifted forward by k positions in the alphabet (Z wraps to A)"
        key_text = f"k = {key[0]}"
    elif cipher == "affine":
        key = [rng.choice(AFFINE_A), rng.randint(1, 25)]
        rule = (
            "affine cipher: with letters numbered A=0..Z=25, each letter x is encrypted as (a*x + b) mod 26"
        )
        key_text = f"a = {key[0]}, b = {key[1]}"
    else:
        key = [rng.randint(1, 25) for _ in range(rng.randint(3, 3 + difficulty // 2))]
        rule = (
            "Vigenere cipher: the i-th letter (spaces are skipped and do not consume key letters) is shifted "
            "forward by the i-th letter of the repeating keyword (A=0, B=1, ..., Z=25)"
        )
        key_text = "keyword " + "".join(chr(A + k) for k in key)
    cipher_text = _encrypt(plain, cipher, key)
    if key_given:
        hint = f"The key is {key_text}."
    else:
        known, letters = [], 0
        while len(known) < n_words - 1 and (
            letters < len(key) + 1 or (cipher == "affine" and not _affine_unique(" ".join(known), key))
        ):
            known.append(words[len(known)])
            letters += len(known[-1])
        size = f" The keyword has {len(key)} letters." if cipher == "vigenere" else ""
        hint = f"The key is unknown, but the plaintext begins with: {' '.join(known).lower()}.{size}"
    article = "an" if cipher == "affine" else "a"
    question = (
        f"The message below was encrypted with {article} {rule}. Spaces are kept as they are.\n{hint}\n\n"
        f"Ciphertext: {cipher_text}\n\n"
        "Decrypt the whole message. Answer with the plaintext words separated by single spaces "
        "(letter case does not matter)."
    )
    meta = {
        "n_words": n_words,
        "key_length": len(key),
        "key_given": key_given,
        "cipher": cipher,
        "key": key,
        "ciphertext": cipher_text,
        "plaintext": plain,
    }
    return {"question": question, "witness": plain, "meta": meta}


def verify(instance: dict, answer: str) -> float:
    try:
        if not isinstance(answer, str) or len(answer) > MAX_ANSWER_CHARS:
            return 0.0
        expected = " ".join(str(instance["meta"]["plaintext"]).upper().split())
        return 1.0 if " ".join(answer.upper().split()) == expected else 0.0
    except Exception:
        return 0.0
