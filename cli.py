"""Run the `gen` command line from a checkout: `python cli.py train gan ...` is `gen train gan ...`.

The installed entry points are `gen` and `python -m gen`; this file is not installed.
"""

from gen.cli import main

if __name__ == "__main__":
    main(prog_name="gen")
