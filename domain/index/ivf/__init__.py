"""IVF: the index object and its quantiser (``index``), the lists with their label maps
(``store``), one inverted list's arrays (``lists``) and the compiled probe (``probe``)."""

from domain.index.ivf.index import AUTO_TRAIN_AT, IvfIndex, default_nlist, default_nprobe

__all__ = ["AUTO_TRAIN_AT", "IvfIndex", "default_nlist", "default_nprobe"]
