"""Shared by the command tests: a user mistake exits 2 with one line on stderr."""

import pytest

from scalesearch.cli import main


@pytest.fixture
def user_error(capsys):
    """``user_error(*argv)``: run the command line, assert exit code 2 and a one-line stderr; return the line."""
    def run(*argv: str) -> str:
        assert main(list(argv)) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1, err
        return err

    return run
