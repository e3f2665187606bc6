"""The methods of both clients, each written once as a plan (see ``_core`` and ``_sides``).

``StacksDB``/``Library`` and ``AsyncStacksDB``/``AsyncLibrary`` inherit every method from
``ClientOps`` and ``LibraryOps``; each client only says how to run a plan (``SyncSide._run``
or ``AsyncSide._run``). One module a resource: ``client`` (the connection and the
libraries), ``library`` (a handle's own fields), and the handle's ``documents``, ``chunks``,
``queries`` (search, counts, embed) and ``index``, each a class over ``handle.Handle`` that
``LibraryOps`` inherits. Most of the package is the public signatures and their docstrings.
"""

from stacksdb_client._surface.chunks import Progress, ProgressCallback
from stacksdb_client._surface.client import ClientOps
from stacksdb_client._surface.library import LibraryOps

__all__ = ["ClientOps", "LibraryOps", "Progress", "ProgressCallback"]
