"""Prerank stages; importing this package registers every module in it (one stage per file).

Which scorers serve either slot: every pre-ranker and ranker is a ``Scorer``
(``rank/base.py``), so the two slots take the same kind of stage. Registered here, one file
each: ``passthrough`` (keeps the recall order), ``light`` (a two-tower ``ctr`` model,
subclasses ``rank.ctr.CTRRanker``), ``multitask`` (subclasses ``rank.multitask.
MultiTaskRanker`` with lighter defaults) and ``lambdamart`` (``rank.lambdamart.
LambdaMARTRanker`` as is). The rankers ``ctr``, ``multitask``, ``lambdamart`` and
``passthrough`` are registered in ``rank/``; a ranker serves the pre-rank slot once a file here
registers it under ``PRERANK`` (a subclass with ``kind = "prerank"``).
"""

from funnelrec.registry_autoload import import_submodules

import_submodules(__name__, __path__)
