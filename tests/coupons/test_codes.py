"""Code generation and normalisation (pure)."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from kopilka.coupons import codes
from kopilka.coupons.codes import ALPHABET, Pattern, lookup_key


def test_alphabet_has_no_look_alikes() -> None:
    assert len(ALPHABET) == 32 == len(set(ALPHABET))
    assert not set("01OI") & set(ALPHABET)


def test_generated_codes_follow_the_pattern() -> None:
    made = codes.generate(Pattern("SPRING", 2, 4), 500)
    assert len(made) == 500
    shape = re.compile(rf"^SPRING-[{ALPHABET}]{{4}}-[{ALPHABET}]{{4}}$")
    for code, key in made:
        assert shape.match(code), code
        assert key == code.replace("-", "")
        assert lookup_key(code) == key


def test_pattern_without_prefix_and_odd_lengths() -> None:
    made = codes.generate(Pattern("", 3, 5), 7)
    assert [len(c) for c, _ in made] == [17] * 7
    assert all(c.count("-") == 2 for c, _ in made)
    assert codes.generate(Pattern(), 0) == []


def test_every_character_is_used_about_evenly() -> None:
    # 40 000 codes of 8 characters: each of the 32 characters ~10 000 times
    text = "".join(k for _, k in codes.generate(Pattern("", 2, 4), 40_000))
    counts = [text.count(ch) for ch in ALPHABET]
    assert min(counts) > 9_000 and max(counts) < 11_000


def test_pattern_space_and_example() -> None:
    assert Pattern("X", 2, 4).space == 32**8
    assert Pattern("SPRING", 2, 4).example() == "SPRING-XXXX-XXXX"
    assert Pattern("", 1, 6).example() == "XXXXXX"


@given(
    st.text(alphabet=ALPHABET, min_size=6, max_size=30),
    st.lists(st.sampled_from([" ", "-", "  ", "–", "_"]), max_size=5),
    st.randoms(use_true_random=False),
)
def test_lookup_key_ignores_case_spaces_and_dashes(
    key: str, separators: list[str], rnd: object
) -> None:
    typed = key.lower()
    for sep in separators:
        pos = rnd.randint(0, len(typed))  # type: ignore[attr-defined]
        typed = typed[:pos] + sep + typed[pos:]
    assert lookup_key(f"  {typed}\t") == key


def test_lookup_key_reads_cyrillic_look_alikes_as_latin() -> None:
    assert lookup_key("СЕКТОР-7КМ") == "CEKTOP7KM"  # all Cyrillic capitals
    assert lookup_key("spring-7kq2-m4xt") == "SPRING7KQ2M4XT"


def test_lookup_key_refuses_what_cannot_be_a_code() -> None:
    assert lookup_key("ab") is None  # too short
    assert lookup_key("A" * 41) is None  # too long
    assert lookup_key("SPRING!2024") is None
    assert lookup_key("ЖУК-123") is None  # Cyrillic with no Latin twin
    assert lookup_key("") is None
