"""The live state of each library: what searches read and writes keep in step.

- ``state.py``: one library's lock, labels, metadata and index (``LiveLibrary``);
- ``change.py``: the one function that applies a committed change to it;
- ``build.py``: the background index build state machine;
- ``registry.py``: the libraries this node serves (``LiveLibraries``);
- ``loading.py``: start-up loading from the store, and ``index_snapshot_check.py``:
  whether a saved index snapshot may be served instead of rebuilding.
"""

from application.live.build import PendingBuild
from application.live.change import CommittedChange, apply_change
from application.live.registry import LiveLibraries
from application.live.state import LiveLibrary

__all__ = ["CommittedChange", "LiveLibraries", "LiveLibrary", "PendingBuild", "apply_change"]
