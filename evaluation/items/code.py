"""Our own small code set: write one function; assert-style tests; an exact reference solution.

Each task names its entry point and signature; the tests call only the entry point and use only
the standard library, so a candidate can be checked by running ``code + tests`` in a bounded
subprocess (``evaluation.sandbox``). Every reference passes its tests (checked by a unit test).
"""

from __future__ import annotations

from dataclasses import dataclass

from evaluation.items.store import Item

INSTRUCTION = "Reply with the complete function in one ```python code block."


@dataclass(frozen=True)
class CodeTask:
    """A function to write, its tests, and a reference solution."""

    entry_point: str
    signature: str
    description: str
    tests: tuple[str, ...]
    reference: str


def _task(
    entry: str, signature: str, description: str, tests: tuple[str, ...], body: str
) -> CodeTask:
    reference = f"def {signature}:\n{body}"
    return CodeTask(entry, signature, description, tests, reference)


TASKS: tuple[CodeTask, ...] = (
    _task(
        "add",
        "add(a: int, b: int) -> int",
        "returns the sum of a and b",
        ("assert add(2, 3) == 5", "assert add(-4, 4) == 0", "assert add(0, 0) == 0"),
        "    return a + b\n",
    ),
    _task(
        "is_even",
        "is_even(n: int) -> bool",
        "returns True when n is even",
        (
            "assert is_even(4) is True",
            "assert is_even(7) is False",
            "assert is_even(0) is True",
            "assert is_even(-3) is False",
        ),
        "    return n % 2 == 0\n",
    ),
    _task(
        "reverse_string",
        "reverse_string(s: str) -> str",
        "returns s reversed",
        (
            "assert reverse_string('abc') == 'cba'",
            "assert reverse_string('') == ''",
            "assert reverse_string('a b') == 'b a'",
        ),
        "    return s[::-1]\n",
    ),
    _task(
        "factorial",
        "factorial(n: int) -> int",
        "returns n! for n >= 0 (0! is 1)",
        (
            "assert factorial(0) == 1",
            "assert factorial(1) == 1",
            "assert factorial(5) == 120",
            "assert factorial(10) == 3628800",
        ),
        "    result = 1\n    for k in range(2, n + 1):\n        result *= k\n    return result\n",
    ),
    _task(
        "max_of_list",
        "max_of_list(values: list[int]) -> int",
        "returns the largest number in a non-empty list",
        (
            "assert max_of_list([3, 9, 2]) == 9",
            "assert max_of_list([-5, -2, -9]) == -2",
            "assert max_of_list([7]) == 7",
        ),
        "    best = values[0]\n    for v in values[1:]:\n        if v > best:\n"
        "            best = v\n    return best\n",
    ),
    _task(
        "is_palindrome",
        "is_palindrome(s: str) -> bool",
        "returns True when s reads the same forwards and backwards, ignoring case",
        (
            "assert is_palindrome('Level') is True",
            "assert is_palindrome('abca') is False",
            "assert is_palindrome('') is True",
            "assert is_palindrome('noon') is True",
        ),
        "    t = s.lower()\n    return t == t[::-1]\n",
    ),
    _task(
        "count_vowels",
        "count_vowels(s: str) -> int",
        "returns how many characters of s are vowels (a, e, i, o, u; either case)",
        (
            "assert count_vowels('hello') == 2",
            "assert count_vowels('AEIOU') == 5",
            "assert count_vowels('xyz') == 0",
            "assert count_vowels('') == 0",
        ),
        "    return sum(1 for c in s.lower() if c in 'aeiou')\n",
    ),
    _task(
        "sum_digits",
        "sum_digits(n: int) -> int",
        "returns the sum of the decimal digits of n (ignoring a minus sign)",
        (
            "assert sum_digits(123) == 6",
            "assert sum_digits(0) == 0",
            "assert sum_digits(-45) == 9",
            "assert sum_digits(9999) == 36",
        ),
        "    return sum(int(d) for d in str(abs(n)))\n",
    ),
    _task(
        "fibonacci",
        "fibonacci(n: int) -> int",
        "returns the n-th Fibonacci number, with fibonacci(0) == 0 and fibonacci(1) == 1",
        (
            "assert fibonacci(0) == 0",
            "assert fibonacci(1) == 1",
            "assert fibonacci(2) == 1",
            "assert fibonacci(10) == 55",
            "assert fibonacci(20) == 6765",
        ),
        "    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n",
    ),
    _task(
        "gcd",
        "gcd(a: int, b: int) -> int",
        "returns the greatest common divisor of two positive integers",
        (
            "assert gcd(12, 18) == 6",
            "assert gcd(7, 13) == 1",
            "assert gcd(100, 10) == 10",
            "assert gcd(9, 9) == 9",
        ),
        "    while b:\n        a, b = b, a % b\n    return a\n",
    ),
    _task(
        "celsius_to_fahrenheit",
        "celsius_to_fahrenheit(c: float) -> float",
        "converts a temperature from degrees Celsius to degrees Fahrenheit",
        (
            "assert celsius_to_fahrenheit(0) == 32",
            "assert celsius_to_fahrenheit(100) == 212",
            "assert celsius_to_fahrenheit(-40) == -40",
        ),
        "    return c * 9 / 5 + 32\n",
    ),
    _task(
        "is_prime",
        "is_prime(n: int) -> bool",
        "returns True when n is a prime number",
        (
            "assert is_prime(2) is True",
            "assert is_prime(1) is False",
            "assert is_prime(17) is True",
            "assert is_prime(21) is False",
            "assert is_prime(0) is False",
        ),
        "    if n < 2:\n        return False\n    k = 2\n    while k * k <= n:\n"
        "        if n % k == 0:\n            return False\n        k += 1\n    return True\n",
    ),
    _task(
        "remove_duplicates",
        "remove_duplicates(values: list[int]) -> list[int]",
        "returns the values without repeats, keeping the first occurrence of each, in order",
        (
            "assert remove_duplicates([1, 2, 1, 3, 2]) == [1, 2, 3]",
            "assert remove_duplicates([]) == []",
            "assert remove_duplicates([5, 5, 5]) == [5]",
        ),
        "    seen = set()\n    out = []\n    for v in values:\n        if v not in seen:\n"
        "            seen.add(v)\n            out.append(v)\n    return out\n",
    ),
    _task(
        "word_count",
        "word_count(text: str) -> int",
        "returns the number of words in text, where words are separated by whitespace",
        (
            "assert word_count('hello world') == 2",
            "assert word_count('') == 0",
            "assert word_count('  one   two three ') == 3",
        ),
        "    return len(text.split())\n",
    ),
    _task(
        "flatten",
        "flatten(lists: list[list[int]]) -> list[int]",
        "returns one list with the items of all inner lists, in order",
        (
            "assert flatten([[1, 2], [3], []]) == [1, 2, 3]",
            "assert flatten([]) == []",
            "assert flatten([[4], [5, 6]]) == [4, 5, 6]",
        ),
        "    return [x for inner in lists for x in inner]\n",
    ),
    _task(
        "capitalize_words",
        "capitalize_words(text: str) -> str",
        "returns text with the first letter of each space-separated word in upper case and "
        "the rest unchanged",
        (
            "assert capitalize_words('hello world') == 'Hello World'",
            "assert capitalize_words('a') == 'A'",
            "assert capitalize_words('') == ''",
            "assert capitalize_words('iPhone case') == 'IPhone Case'",
        ),
        "    return ' '.join(w[:1].upper() + w[1:] for w in text.split(' '))\n",
    ),
    _task(
        "running_sum",
        "running_sum(values: list[int]) -> list[int]",
        "returns the list of prefix sums of values",
        (
            "assert running_sum([1, 2, 3]) == [1, 3, 6]",
            "assert running_sum([]) == []",
            "assert running_sum([5, -5, 2]) == [5, 0, 2]",
        ),
        "    total = 0\n    out = []\n    for v in values:\n        total += v\n"
        "        out.append(total)\n    return out\n",
    ),
    _task(
        "second_largest",
        "second_largest(values: list[int]) -> int",
        "returns the second largest distinct value of a list holding at least two distinct values",
        (
            "assert second_largest([3, 1, 2]) == 2",
            "assert second_largest([5, 5, 4]) == 4",
            "assert second_largest([-1, -7]) == -7",
        ),
        "    return sorted(set(values))[-2]\n",
    ),
    _task(
        "fizzbuzz",
        "fizzbuzz(n: int) -> str",
        "returns 'FizzBuzz' if n is divisible by 15, 'Fizz' if by 3, 'Buzz' if by 5, else str(n)",
        (
            "assert fizzbuzz(15) == 'FizzBuzz'",
            "assert fizzbuzz(9) == 'Fizz'",
            "assert fizzbuzz(10) == 'Buzz'",
            "assert fizzbuzz(7) == '7'",
        ),
        "    if n % 15 == 0:\n        return 'FizzBuzz'\n"
        "    if n % 3 == 0:\n        return 'Fizz'\n"
        "    if n % 5 == 0:\n        return 'Buzz'\n    return str(n)\n",
    ),
    _task(
        "count_char",
        "count_char(s: str, c: str) -> int",
        "returns how many times the single character c occurs in s",
        (
            "assert count_char('banana', 'a') == 3",
            "assert count_char('', 'x') == 0",
            "assert count_char('Aa', 'a') == 1",
        ),
        "    return s.count(c)\n",
    ),
    _task(
        "average",
        "average(values: list[float]) -> float",
        "returns the arithmetic mean of a non-empty list",
        (
            "assert average([1, 2, 3]) == 2",
            "assert average([5]) == 5",
            "assert average([1, 2]) == 1.5",
        ),
        "    return sum(values) / len(values)\n",
    ),
    _task(
        "is_sorted",
        "is_sorted(values: list[int]) -> bool",
        "returns True when values is in non-decreasing order",
        (
            "assert is_sorted([1, 2, 2, 5]) is True",
            "assert is_sorted([3, 1]) is False",
            "assert is_sorted([]) is True",
        ),
        "    return all(a <= b for a, b in zip(values, values[1:]))\n",
    ),
    _task(
        "power_of_two",
        "power_of_two(n: int) -> bool",
        "returns True when n is a positive power of two (1, 2, 4, 8, ...)",
        (
            "assert power_of_two(1) is True",
            "assert power_of_two(16) is True",
            "assert power_of_two(12) is False",
            "assert power_of_two(0) is False",
        ),
        "    return n > 0 and n & (n - 1) == 0\n",
    ),
    _task(
        "square_all",
        "square_all(values: list[int]) -> list[int]",
        "returns the squares of values, in order",
        ("assert square_all([1, -2, 3]) == [1, 4, 9]", "assert square_all([]) == []"),
        "    return [v * v for v in values]\n",
    ),
)


def _question(task: CodeTask) -> str:
    return f"Write a Python function `{task.signature}` that {task.description}.\n{INSTRUCTION}"


def code_items() -> list[Item]:
    """The code tasks as items: the gold answer is the reference, tests ride in metadata."""
    return [
        Item(
            f"code-{i:04d}",
            "code",
            "dev",
            _question(task),
            task.reference,
            "code",
            {"entry_point": task.entry_point, "tests": list(task.tests)},
        )
        for i, task in enumerate(TASKS)
    ]
