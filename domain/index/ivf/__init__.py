"""IVF: the index object and its quantiser (``index``), the lists with their label maps
(``store``), one inverted list's arrays (``lists``), the compiled probe (``probe``) and how
many lists to build and probe (``planner``)."""

from domain.index.ivf.index import AUTO_TRAIN_AT, IvfIndex
from domain.index.ivf.planner import default_nlist, default_nprobe

__all__ = ["AUTO_TRAIN_AT", "IvfIndex", "default_nlist", "default_nprobe"]
