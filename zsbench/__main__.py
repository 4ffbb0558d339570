"""``python -m zsbench`` is the ``zsbench`` command."""

from zsbench.cli import main

main()
