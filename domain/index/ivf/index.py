"""The inverted-file index (IVF): a k-means coarse quantiser over inverted lists (kept by
``store.ListStore``).

Each vector lives in the list of its nearest centroid; a search ranks the centroids against
the query (one BLAS product, shared by a batch of queries) and scans only the ``nprobe``
best lists in one compiled kernel (``probe_lists``) that holds no GIL from the first list
to the ranked answer, so concurrent searches run on separate cores. The kernel scores each
row once in float32 (``scoring.distance``) and keeps only the rows whose float32 distance
could be within a rigorous error bound of the k-th best (``scoring.scan_rows``), then ranks
those by their float64 ``exact_distance``: the exact top k of the probed (and allowed) rows.

Time: training O(i·s·nlist·d) for i k-means iterations on s ≤ 64·nlist sampled rows;
add O(nlist·d) per vector (nearest centroid) plus O(d) amortised to append it; remove O(d)
per vector (swap-remove inside its list); search O(nlist·d) to rank the centroids plus
O(nprobe·(n/nlist)·d) for the scanned lists, then an exact float64 re-rank of the rows
whose float32 distance could be in the top k (about k rows for unit-scale data; see
``scoring.scan_terms``): O(n^¾·d) per query with the defaults (nlist = √n, nprobe =
2·√nlist). Per query, O(k + kept rows) scratch.
Space: n·d·4 bytes of vectors in per-list float32 blocks (up to 1.25x spare capacity),
8 bytes of label and 4 of |x|² per row, nlist·d·4 for the centroids, 12 bytes per label
ever assigned for the label -> (list, row) maps, and per list a size and a reference to its
blocks in the typed lists the kernel reads.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from typing import Self

import numpy as np
from numpy.typing import NDArray

from domain.index.batches import fan_out, last_of_each
from domain.index.ivf.planner import default_nlist, default_nprobe, probe_strategy, probe_width
from domain.index.ivf.probe import probe_lists
from domain.index.ivf.store import ListStore
from domain.index.kmeans import train_kmeans
from domain.index.scoring import (
    Hits,
    IndexQuery,
    Keys,
    Labels,
    Mask,
    SearchParams,
    StateArrays,
    exact_order,
    kernel_metric,
    keys_for,
    prepare_query,
    scores_from_exact,
    squared_norms,
)
from domain.index.state_header import read_state_header, state_header
from domain.models import IndexSpec, IndexType, IvfParams, Matrix, Metric, Vector
from domain.vectors import prepare

Progress = Callable[[float], None]

# An untrained index keeps one list; it trains itself once it holds this many vectors.
AUTO_TRAIN_AT = 4_096
# Drift: rebuild once the index grew this much since training, or a list got this many
# times longer than the average one.
_REBUILD_GROWTH = 1.0
_REBUILD_IMBALANCE = 8.0
_ASSIGN_BLOCK = 8_192
# ``probe_lists`` takes a mask even when there is no filter.
_NO_MASK = np.zeros(0, dtype=np.bool_)


def _no_progress(_: float) -> None:
    return None


class IvfIndex:
    """Implements ``domain.ports.VectorIndex`` approximately (exact when every list is probed).

    Until it is trained (``build``, ``train`` or, by itself, once it holds 4,096 vectors) the
    index keeps a single list and every search is an exact scan. Deletes swap-remove inside
    their list, so no deleted vector can ever be scored. ``needs_rebuild`` reports drift.
    """

    def __init__(self, dimension: int, metric: Metric, params: IvfParams | None = None) -> None:
        self._dimension = dimension
        self._metric = metric
        self._params = params or IvfParams()
        self._centroids: Matrix = np.zeros((1, dimension), dtype=np.float32)
        self._centroid_norms: NDArray[np.float32] = np.zeros(1, dtype=np.float32)
        self._trained = False
        self._trained_size = 0
        self._kernel_metric = kernel_metric(metric)
        self._store = ListStore(dimension)

    # -- construction -------------------------------------------------------------------

    @classmethod
    def build(
        cls,
        dimension: int,
        metric: Metric,
        params: IvfParams | None,
        labels: Labels,
        vectors: Matrix,
        progress: Progress = _no_progress,
    ) -> Self:
        """Train on ``vectors`` (nlist defaults to √n) and add them: k-means, then one
        assignment pass, reporting progress between 0 and 1."""
        index = cls(dimension, metric, params)
        progress(0.0)
        prepared = prepare(vectors, metric)
        if prepared.shape[0]:
            index._train_on(prepared)
        progress(0.5)
        step = 50_000
        n = labels.shape[0]
        for start in range(0, n, step):
            index._add_prepared(labels[start : start + step], prepared[start : start + step])
            progress(0.5 + 0.5 * min(1.0, (start + step) / max(1, n)))
        progress(1.0)
        return index

    def train(self, vectors: Matrix | None = None) -> None:
        """(Re)train the quantiser on ``vectors`` (default: the stored ones), then move every
        stored vector to the list of its new nearest centroid."""
        labels, stored = self.items()
        sample = stored if vectors is None else prepare(vectors, self._metric)
        if sample.shape[0] == 0:
            return
        self._train_on(sample)
        self._add_prepared(labels, stored)

    def _train_on(self, prepared: Matrix) -> None:
        nlist = self._params.nlist or default_nlist(prepared.shape[0])
        self._centroids = train_kmeans(prepared, min(nlist, prepared.shape[0]), seed=0)
        self._centroid_norms = squared_norms(self._centroids)
        self._trained = True
        self._trained_size = prepared.shape[0]
        self._store.reset(self.nlist)

    # -- the VectorIndex protocol -------------------------------------------------------

    @property
    def spec(self) -> IndexSpec:
        return IndexSpec(IndexType.IVF, self._params)

    @property
    def metric(self) -> Metric:
        return self._metric

    @property
    def dimension(self) -> int:
        return self._dimension

    @property
    def nlist(self) -> int:
        """Lists in use: 1 before training."""
        return int(self._centroids.shape[0])

    @property
    def nprobe(self) -> int:
        """The default search width, clamped to the lists in use."""
        wanted = self._params.nprobe or default_nprobe(self.nlist)
        return max(1, min(wanted, self.nlist))

    @property
    def trained(self) -> bool:
        return self._trained

    @property
    def imbalance(self) -> float:
        """Longest list over the average list length (1.0 is perfectly balanced)."""
        if self._store.size == 0:
            return 1.0
        return self._store.longest * self.nlist / self._store.size

    @property
    def needs_rebuild(self) -> bool:
        """True when a rebuild would help: untrained yet large, doubled in size since
        training, or a list at least 8x longer than the average one."""
        if not self._trained:
            return self._store.size >= AUTO_TRAIN_AT
        grown = self._store.size > self._trained_size * (1.0 + _REBUILD_GROWTH)
        return grown or (self.nlist > 1 and self.imbalance >= _REBUILD_IMBALANCE)

    def __len__(self) -> int:
        return self._store.size

    def __contains__(self, label: int) -> bool:
        return label in self._store

    def add(self, labels: Labels, vectors: Matrix) -> None:
        """Insert or replace one vector per label (the last wins when a label repeats)."""
        if labels.shape[0] == 0:
            return
        self._add_prepared(labels, prepare(vectors, self._metric))
        if not self._trained and self._store.size >= AUTO_TRAIN_AT:
            self.train()

    def _add_prepared(self, labels: Labels, vectors: Matrix) -> None:
        labels, vectors = last_of_each(labels, vectors)
        self._store.remove(labels)
        self._store.add(labels, vectors, self._nearest_lists(vectors))

    def _nearest_lists(self, vectors: Matrix) -> NDArray[np.int64]:
        """Each vector's list: the centroid with the best fast key for the metric (an
        approximate nearest centroid costs a little recall, never a wrong answer)."""
        if self.nlist == 1:
            return np.zeros(vectors.shape[0], dtype=np.int64)
        out = np.empty(vectors.shape[0], dtype=np.int64)
        for start in range(0, vectors.shape[0], _ASSIGN_BLOCK):
            block = vectors[start : start + _ASSIGN_BLOCK]
            keys = keys_for(self._centroids, block, self._metric, self._centroid_norms)
            out[start : start + _ASSIGN_BLOCK] = np.argmax(keys, axis=1)
        return out

    def remove(self, labels: Labels) -> None:
        """Swap-remove these labels inside their lists; unknown labels are ignored."""
        self._store.remove(labels)

    def search(
        self,
        query: Vector,
        k: int,
        *,
        allowed: Mask | None = None,
        params: SearchParams | None = None,
        exact: bool = False,
    ) -> Hits:
        """The best ``k`` allowed labels among the ``nprobe`` lists nearest the query.

        With a filter that admits a share s of the rows, ``nprobe`` is widened to
        nprobe/√s (the allowed top k lie about as far out as the unfiltered top k/s), only
        the allowed rows of a list are scored, and lists keep being probed (best first)
        until ``k`` allowed rows were seen, so a selective filter does not starve the
        answer. ``exact`` probes every list. The probed rows are ranked exactly, in one
        compiled call without the GIL (``probe_lists``), so probing every list gives the
        exact top k, equal scores in the order of the lists' rows.
        """
        if self._store.size == 0 or k <= 0:
            return Hits.empty("ivf")
        q = np.ascontiguousarray(prepare_query(query, self._metric), dtype=np.float32)
        keys = keys_for(self._centroids, q, self._metric, self._centroid_norms)
        return self._probe(IndexQuery(q, k, allowed, params, exact), self._ranked_lists(q, keys))

    def search_many(
        self, queries: Sequence[IndexQuery], *, executor: Executor | None = None
    ) -> list[Hits]:
        """What ``search`` answers for each query, in order: the centroids are scored for
        the whole batch in one matrix product, then each query probes its lists in the
        compiled kernel, on ``executor``'s threads when given (the kernel holds no GIL).
        The lists come in their exact order (``scoring.exact_order``) however the product
        rounded, so each query probes the lists its single search would."""
        if self._store.size == 0 or not queries:
            return [Hits.empty("ivf") for _ in queries]
        matrix = np.stack([prepare_query(q.vector, self._metric) for q in queries])
        keys = keys_for(self._centroids, matrix, self._metric, self._centroid_norms)
        prepared = [
            (IndexQuery(matrix[i], q.k, q.allowed, q.params, q.exact), keys[i])
            for i, q in enumerate(queries)
        ]

        def one(item: tuple[IndexQuery, Keys]) -> Hits:
            query, query_keys = item
            if query.k <= 0:
                return Hits.empty("ivf")
            return self._probe(query, self._ranked_lists(query.vector, query_keys))

        return fan_out(one, prepared, executor)

    def _probe(self, query: IndexQuery, order: NDArray[np.intp]) -> Hits:
        """Probe the lists in ``order`` for a prepared query (``search``'s second half)."""
        allowed = query.allowed
        nprobe = probe_width(query, self.nlist, self.nprobe, self._store.size)
        blocks = self._store.blocks
        mask = _NO_MASK if allowed is None else np.ascontiguousarray(allowed, dtype=np.bool_)
        labels, distances, probed = probe_lists(
            self._kernel_metric,
            blocks.vectors,
            blocks.labels,
            blocks.sq_norms,
            blocks.sizes,
            order,
            nprobe,
            mask,
            allowed is not None,
            np.ascontiguousarray(query.vector, dtype=np.float32),
            query.k,
        )
        strategy = probe_strategy(
            filtered=allowed is not None,
            scanned=query.exact or not self._trained or probed >= self.nlist,
            widened=probed > nprobe,
        )
        if labels.shape[0] == 0:
            return Hits.empty(strategy)
        hits = Hits(labels, scores_from_exact(-distances, self._metric), strategy)
        hits.extra["lists_probed"] = float(probed)
        return hits

    def _ranked_lists(self, q: Vector, keys: Keys) -> NDArray[np.intp]:
        """The lists nearest first, from the centroids' fast ``keys`` against ``q``."""
        if self.nlist == 1:
            return np.zeros(1, dtype=np.intp)
        return exact_order(keys, self._centroids, q, self._metric, self._centroid_norms)

    def items(self) -> tuple[Labels, Matrix]:
        """Copies of the live labels and their stored (prepared) vectors, list by list."""
        return self._store.items()

    def nbytes(self) -> int:
        quantiser = self._centroids.nbytes + self._centroid_norms.nbytes
        return int(self._store.nbytes() + quantiser)

    # -- snapshots ----------------------------------------------------------------------

    def to_state(self) -> StateArrays:
        """Arrays that ``from_state`` turns back into an identical index (lists in order)."""
        labels, vectors = self.items()
        return {
            **state_header(IndexType.IVF, self._metric, self._dimension),
            "nlist_param": np.array(self._params.nlist or 0, dtype=np.int64),
            "nprobe_param": np.array(self._params.nprobe or 0, dtype=np.int64),
            "trained": np.array(self._trained),
            "trained_size": np.array(self._trained_size, dtype=np.int64),
            "centroids": self._centroids.copy(),
            "list_sizes": self._store.sizes(),
            "labels": labels,
            "vectors": vectors,
        }

    @classmethod
    def from_state(cls, state: StateArrays) -> Self:
        """The index saved by ``to_state``; raises ``ValueError`` on inconsistent arrays."""
        metric, dimension = read_state_header(state, IndexType.IVF)
        params = IvfParams(
            nlist=int(state["nlist_param"]) or None, nprobe=int(state["nprobe_param"]) or None
        )
        index = cls(dimension, metric, params)
        centroids = np.ascontiguousarray(state["centroids"], dtype=np.float32)
        sizes = np.asarray(state["list_sizes"], dtype=np.int64)
        labels = np.asarray(state["labels"], dtype=np.int64)
        vectors = np.ascontiguousarray(state["vectors"], dtype=np.float32)
        consistent = (
            centroids.ndim == 2
            and centroids.shape[1] == dimension
            and sizes.shape[0] == centroids.shape[0]
            and int(sizes.sum()) == labels.shape[0] == vectors.shape[0]
            and vectors.shape[1] == dimension
        )
        if not consistent:
            raise ValueError("IVF state arrays do not agree with each other")
        index._centroids = centroids
        index._centroid_norms = squared_norms(centroids)
        index._trained = bool(state["trained"])
        index._trained_size = int(state["trained_size"])
        index._store.load(sizes, labels, vectors)
        return index
