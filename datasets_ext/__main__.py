"""``python -m datasets_ext`` (or ``ir_datasets_lareqa``): ir_datasets' CLI with the LAReQA ids."""

import sys

import ir_datasets

import datasets_ext  # noqa: F401  (registers the ids)


def main() -> None:
    ir_datasets.main(sys.argv[1:])


if __name__ == "__main__":
    main()
