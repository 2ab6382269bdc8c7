"""Reading YAML within limits: every problem is a ``file:line:col`` line, never a hang or a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.errors import ConfigError
from config.yamlsource import MAX_ALIAS_NODES, MAX_BYTES, MAX_DEPTH, load_located, parse_located


def problems(text: str) -> tuple[str, ...]:
    with pytest.raises(ConfigError) as caught:
        parse_located(text, "f.yaml")
    return caught.value.problems


def test_a_billion_laughs_is_refused_at_the_alias_that_crosses_the_limit() -> None:
    """Nine levels of nine aliases (10^9 values) stop at the first alias past the expansion limit."""
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 9)]
    (problem,) = problems("\n".join(lines))
    assert problem.startswith("f.yaml:5:")
    assert f"aliases expand to more than {MAX_ALIAS_NODES:,} values" in problem


def test_shared_blocks_within_the_limit_still_work() -> None:
    """Anchors and merge keys are legitimate: a block shared a few times loads as if written out."""
    text = "base: &base {a: 1, b: 2}\none: {<<: *base, c: 3}\ntwo: *base\n"
    assert parse_located(text, "f.yaml").data == {
        "base": {"a": 1, "b": 2},
        "one": {"a": 1, "b": 2, "c": 3},
        "two": {"a": 1, "b": 2},
    }


def test_a_recursive_alias_is_refused() -> None:
    """An alias inside the node it names would make an endless structure."""
    assert problems("a: &x [1, *x]\n") == ("f.yaml:1:11: alias *x refers to a node that contains it",)


@pytest.mark.parametrize("opening", ["[", "{a: ", "- "])
def test_deep_nesting_is_refused_before_python_recursion_runs_out(opening: str) -> None:
    """20,000 levels of flow or block nesting end in one located line, not a RecursionError."""
    text = opening * 20_000 if opening != "- " else "".join("  " * i + "-\n" for i in range(200))
    (problem,) = problems(text)
    assert problem.startswith("f.yaml:")
    assert f"nested more than {MAX_DEPTH} levels deep" in problem


def test_duplicate_keys_are_refused_everywhere_with_the_second_place() -> None:
    """PyYAML keeps the last of two equal keys; we name both duplicates, in file order."""
    text = "store: {url: a}\naccounts:\n  x: 1\n  x: 2\nstore: {url: b}\n"
    assert problems(text) == (
        "f.yaml:4:3: accounts.x: duplicate key (the earlier value would be ignored)",
        "f.yaml:5:1: store: duplicate key (the earlier value would be ignored)",
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("2026-02-30", "'2026-02-30' is not a valid date: day is out of range for month"),
        (".nan", "'.nan' is not a finite number"),
        ("-.inf", "'-.inf' is not a finite number"),
        ("1.0e+400", "'1.0e+400' is not a finite number"),
        ("1" * 40, "integer too large (1111111111111111111111111111111111111111 is beyond 64 bits)"),
        ("9" * 5000, "integer too large (more than 19 digits)"),
        ("0x" + "f" * 17, "integer too large (" + str(int("f" * 17, 16)) + " is beyond 64 bits)"),
    ],
)
def test_values_python_cannot_hold_sanely_are_refused_at_their_place(value: str, message: str) -> None:
    """Dates that do not exist, non-finite floats and integers beyond 64 bits are located errors."""
    assert problems(f"a:\n  b: {value}\n") == (f"f.yaml:2:6: a.b: {message}",)


def test_an_integer_at_the_64_bit_limit_is_still_a_number() -> None:
    """The bound is exactly 2^63 - 1 in magnitude."""
    assert parse_located(f"a: {2**63 - 1}\nb: -{2**63 - 1}\n", "f.yaml").data == {
        "a": 2**63 - 1,
        "b": -(2**63 - 1),
    }


def test_an_oversized_file_is_refused_without_being_read(tmp_path: Path) -> None:
    """A 50 MB file gets one line naming its size and the limit; it is never parsed."""
    big = tmp_path / "big.yaml"
    with big.open("wb") as handle:
        handle.truncate(50 * 1024 * 1024)  # sparse: the size is what counts
    with pytest.raises(ConfigError) as caught:
        load_located(big)
    assert caught.value.problems == (
        f"{big}:1:1: the file has 52,428,800 bytes; a configuration file may have at most {MAX_BYTES:,} "
        "(is this the right file?)",
    )


def test_bytes_that_are_not_utf8_are_located(tmp_path: Path) -> None:
    """The first byte that is not UTF-8 is named with its line and column."""
    path = tmp_path / "latin1.yaml"
    path.write_bytes("a: 1\nname: Jörg\n".encode("latin-1"))
    with pytest.raises(ConfigError) as caught:
        load_located(path)
    assert caught.value.problems == (f"{path}:2:8: not UTF-8 text (byte 0xf6)",)


def test_a_control_character_is_located() -> None:
    """YAML forbids most control characters; the reader's complaint gets a line and column."""
    assert problems("a: 1\nb: x\x00y\n") == ("f.yaml:2:5: character #x0000 is not allowed in YAML",)


def test_several_documents_are_one_located_problem() -> None:
    """A configuration file is one document."""
    (problem,) = problems("a: 1\n---\nb: 2\n")
    assert problem.startswith("f.yaml:2:1: ")
