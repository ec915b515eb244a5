"""``python -m funnelrec.cli`` (as ``python -m funnelrec``)."""

from funnelrec.cli import main

main()
