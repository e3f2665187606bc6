"""``X-StacksDB-Index``: the log index a write committed at, answered by its route.

A write route hands a ``CommitReceipt`` to its use case and answers the index the commit
recorded with ``answer_index``; the cluster edge (``cluster_edge.py``) reads the header
back to wait for followers before the answer leaves. So the index travels in the answer
itself, from the commit to the client, with nothing on the side.
"""

from __future__ import annotations

from fastapi import Response

from application.dto import CommitReceipt

INDEX_HEADER = "X-StacksDB-Index"


def answer_index(response: Response, receipt: CommitReceipt) -> None:
    """Put the receipt's log index on ``response``; a write that logged nothing has none."""
    if receipt.log_index is not None:
        response.headers[INDEX_HEADER] = str(receipt.log_index)
