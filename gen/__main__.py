"""`python -m gen ...` (and `torchrun -m gen ...`): the `gen` command line."""

from gen.cli import main

main(prog_name="gen")
