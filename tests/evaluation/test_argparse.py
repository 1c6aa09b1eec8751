"""The helper that turns config dataclasses into command-line options."""

from __future__ import annotations

import argparse
import dataclasses

import pytest

from evaluation.cli._options import add_config_arguments, field_docs, flag


@dataclasses.dataclass(frozen=True, kw_only=True)
class Base:
    """A config with documented fields."""

    rate: float = 0.5
    """How fast,
    over two lines."""
    size: int = 3
    undocumented: str = "x"
    # a comment is not a docstring
    on: bool = True
    """Switched on."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class Child(Base):
    """A subclass that documents one more field and redocuments one."""

    size: int = 4
    """How many, in the child."""
    shape: tuple[int, ...] = (1, 2)
    """Not a scalar: no option."""
    needed: int
    """A field without a default."""


def test_field_docs_reads_the_string_under_each_field_including_inherited_ones():
    assert field_docs(Base) == {"rate": "How fast, over two lines.", "on": "Switched on."}
    assert field_docs(Child)["size"] == "How many, in the child."
    assert field_docs(Child)["rate"] == "How fast, over two lines."
    assert "undocumented" not in field_docs(Child)


def test_flag_spells_a_field_with_hyphens():
    assert flag("learning_rate") == "--learning-rate"


def test_options_have_the_docstring_and_the_default_as_help():
    parser = argparse.ArgumentParser()
    options = add_config_arguments(parser, Child, exclude=("needed",))
    assert options.names == ("rate", "size", "undocumented", "on")
    assert options.flags == ("--rate", "--size", "--undocumented", "--on", "--no-on")
    helps = {action.dest: action.help for action in parser._actions}
    assert helps["rate"] == "How fast, over two lines. (default: 0.5)"
    assert helps["size"] == "How many, in the child. (default: 4)"
    assert helps["on"] == "Switched on. (default: True)"


def test_build_keeps_defaults_for_unset_options_and_converts_types():
    parser = argparse.ArgumentParser()
    options = add_config_arguments(parser, Child, exclude=("needed",))
    assert options.build(parser.parse_args([]), needed=1) == Child(needed=1)
    args = parser.parse_args(["--rate", "2", "--no-on", "--size", "7"])
    assert options.build(args, needed=1) == Child(rate=2.0, on=False, size=7, needed=1)


def test_a_value_of_the_wrong_type_is_a_usage_error(capsys):
    parser = argparse.ArgumentParser()
    add_config_arguments(parser, Child)
    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args(["--size", "many"])
    assert exit_info.value.code == 2
    assert "--size: invalid int value: 'many'" in capsys.readouterr().err
