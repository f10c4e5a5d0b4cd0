"""`python -m ctrip_cli` runs the same CLI as the `ctrip` console script."""

from ctrip_cli.cli import main

main()
