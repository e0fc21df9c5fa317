"""``python -m datasets_ext`` (or ``ir_datasets_lareqa``): ir_datasets' CLI with the LAReQA ids."""

import sys
from collections.abc import Sequence

import ir_datasets

import datasets_ext  # noqa: F401  (registers the ids)


def main(argv: Sequence[str] | None = None) -> None:
    """Run ir_datasets' command line (``export``, ``lookup``, ``doc_fifos``, ...) on ``argv``."""
    ir_datasets.main(list(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    main()
