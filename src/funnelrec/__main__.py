"""``python -m funnelrec`` (also ``torchrun -m funnelrec fit --distributed ...``)."""

from funnelrec.cli import main

main()
