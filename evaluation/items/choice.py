"""Our own multiple-choice set (letters A-D): arithmetic with near-miss distractors, and facts.

Every answer is exact: arithmetic is computed, and the facts are textbook ones chosen so that no
distractor is arguably right. The correct option's position is drawn from a seeded RNG.
"""

from __future__ import annotations

import random

from evaluation.items.store import Item

LETTERS = "ABCD"
INSTRUCTION = "Answer with the letter of the correct option."
ARITHMETIC_COUNT = 36

# (question, correct, three wrong options)
FACTS: tuple[tuple[str, str, tuple[str, str, str]], ...] = (
    ("What is the capital of France?", "Paris", ("Berlin", "Madrid", "Rome")),
    ("How many days are in a week?", "7", ("5", "6", "8")),
    ("What is the chemical symbol for gold?", "Au", ("Ag", "Gd", "Fe")),
    ("Which planet is the largest in the Solar System?", "Jupiter", ("Saturn", "Earth", "Mars")),
    ("At sea level, water boils at how many degrees Celsius?", "100", ("90", "50", "212")),
    ("How many sides does a hexagon have?", "6", ("5", "7", "8")),
    ("What is the capital of Japan?", "Tokyo", ("Kyoto", "Osaka", "Seoul")),
    (
        "Which gas do plants take from the air for photosynthesis?",
        "Carbon dioxide",
        ("Oxygen", "Nitrogen", "Helium"),
    ),
    ("How many minutes are in an hour?", "60", ("30", "100", "24")),
    (
        "What is the largest ocean on Earth?",
        "Pacific Ocean",
        ("Atlantic Ocean", "Indian Ocean", "Arctic Ocean"),
    ),
    (
        'Who wrote the play "Romeo and Juliet"?',
        "William Shakespeare",
        ("Charles Dickens", "Jane Austen", "Mark Twain"),
    ),
    ("At sea level, water freezes at how many degrees Celsius?", "0", ("10", "32", "-10")),
    ("How many legs does a spider have?", "8", ("6", "10", "4")),
    ("What is the chemical formula of water?", "H2O", ("CO2", "O2", "NaCl")),
    ("Which planet is closest to the Sun?", "Mercury", ("Venus", "Mars", "Earth")),
    ("What is the capital of Italy?", "Rome", ("Milan", "Paris", "Venice")),
    ("How many hours are in a day?", "24", ("12", "20", "48")),
    ("What is the square root of 81?", "9", ("8", "18", "7")),
    ("Which is the largest mammal?", "Blue whale", ("African elephant", "Giraffe", "Hippopotamus")),
    ("How many sides does a triangle have?", "3", ("4", "5", "6")),
    ("What is the capital of Germany?", "Berlin", ("Munich", "Vienna", "Hamburg")),
    ("How many months are in a year?", "12", ("10", "11", "13")),
    ("Which organ pumps blood through the human body?", "Heart", ("Liver", "Lungs", "Kidneys")),
    ("What is 10% of 200?", "20", ("2", "10", "200")),
)


def _options(rng: random.Random, correct: str, wrong: tuple[str, ...]) -> tuple[list[str], str]:
    """The four options with the correct one at a drawn position, and its letter."""
    options = list(wrong)
    rng.shuffle(options)
    position = rng.randrange(len(LETTERS))
    options.insert(position, correct)
    return options, LETTERS[position]


def _question(stem: str, options: list[str]) -> str:
    lines = [
        stem,
        *(f"{letter}. {option}" for letter, option in zip(LETTERS, options, strict=True)),
    ]
    return "\n".join([*lines, INSTRUCTION])


def _arithmetic(rng: random.Random) -> tuple[str, int, tuple[str, str, str]]:
    """A two-term sum, difference or product with three distinct near-miss wrong values."""
    op = rng.choice("+-*")
    a, b = (
        (rng.randint(2, 12), rng.randint(2, 12))
        if op == "*"
        else (
            rng.randint(10, 99),
            rng.randint(10, 99),
        )
    )
    if op == "-" and b > a:
        a, b = b, a
    value = a + b if op == "+" else a - b if op == "-" else a * b
    offsets = [-10, -2, -1, 1, 2, 10] if op != "*" else [-b, -1, 1, b, a]
    wrong: list[int] = []
    for offset in rng.sample(offsets, len(offsets)):
        candidate = value + offset
        if candidate >= 0 and candidate != value and candidate not in wrong:
            wrong.append(candidate)
        if len(wrong) == 3:
            break
    return f"What is {a} {op} {b}?", value, (str(wrong[0]), str(wrong[1]), str(wrong[2]))


def choice_items(seed: int) -> list[Item]:
    """Facts first, then computed arithmetic, each with options in a seeded order."""
    rng = random.Random(f"choice:{seed}")
    rows: list[tuple[str, str, tuple[str, str, str], str]] = [
        (stem, correct, wrong, "fact") for stem, correct, wrong in FACTS
    ]
    seen = {stem for stem, *_ in FACTS}
    while len(rows) < len(FACTS) + ARITHMETIC_COUNT:
        stem, value, wrong = _arithmetic(rng)
        if stem not in seen:
            seen.add(stem)
            rows.append((stem, str(value), wrong, "arithmetic"))
    items = []
    for index, (stem, correct, wrong, topic) in enumerate(rows):
        options, letter = _options(rng, correct, wrong)
        metadata = {"topic": topic, "options": options, "correct": correct}
        items.append(
            Item(
                f"choice-{index:04d}",
                "choice",
                "dev",
                _question(stem, options),
                letter,
                "choice",
                metadata,
            )
        )
    return items
