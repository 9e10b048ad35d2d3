"""Exact nearest neighbours in code space: the one search behind every k-NN in aelab (the Draw page's vote, kNN
accuracy, the neighbours the exploring pages show, new codes placed on a map, and UMAP's neighbour graph).

Codes are low-dimensional (2 to a few hundred) and the sets the app searches hold at most tens of thousands, so a
brute-force search by matrix products is exact and fast (10,000 x 30-d codes: 0.3 ms for one query, 0.4 s for the
whole 15-NN graph on 2 cores, measured here), and needs neither scikit-learn's import (3 s) nor a tree or graph index.
"""

from __future__ import annotations

import numpy as np
import torch


class ExactNeighbours:
    """Exact Euclidean k nearest neighbours of a fixed set of points, by chunked matrix products in torch.

    `graph(k)` is the k-NN graph of the points themselves (each point first, at distance 0, as pynndescent's
    neighbor_graph has it); `query(x, k)` answers for new points with the signature of pynndescent's
    NNDescent.query, so umap-learn's transform can use it as its search index. Candidates are picked with the
    expanded form |q|^2 - 2 q.p + |p|^2 on centred points and their distances then computed directly, so the
    distances are exact and a point's distance to itself is 0."""

    _angular_trees = False  # read by umap-learn's transform
    BLOCK = 2 ** 25  # floats in one block of squared distances (128 MB): its rows are queries, its columns points

    def __init__(self, points):
        points = np.asarray(points, dtype=np.float32)
        self._mean = points.mean(0)
        self._points = torch.from_numpy(np.ascontiguousarray(points - self._mean))
        self._norms = self._points.pow(2).sum(1)
        self._max_norm = float(self._norms.max()) if len(points) else 0.0

    def _search(self, q_all, k: int, self_first: bool) -> tuple[np.ndarray, np.ndarray]:
        """Neighbours of the centred query rows q_all (a tensor); self_first: q_all are the points themselves.

        The expanded form in float32 is off by up to about ROUNDING * (|q|^2 + |p|^2): more candidates than k are
        taken, and a row whose k-th exact distance is not clear of that error below the last candidate's (tight
        clusters far from the mean, where the error swamps the distances) is searched again in float64."""
        n = len(self._points)
        k = min(k, n)
        wanted = min(n, 2 * k + 8)
        indices = np.empty((len(q_all), k), dtype=np.int32)
        dists = np.empty((len(q_all), k), dtype=np.float32)
        chunk = max(1, self.BLOCK // max(1, n))
        with torch.no_grad():
            for start in range(0, len(q_all), chunk):
                q = q_all[start:start + chunk]
                q_norms = q.pow(2).sum(1)
                d2 = torch.addmm(self._norms, q, self._points.T, alpha=-2).add_(q_norms[:, None])
                if self_first:
                    rows = torch.arange(len(q))
                    d2[rows, rows + start] = -1.0
                approx, candidates = d2.topk(wanted, largest=False, sorted=True)
                exact2 = (q[:, None, :] - self._points[candidates]).pow(2).sum(-1)
                own = torch.arange(start, start + len(q))[:, None] if self_first else None
                if own is not None:  # itself first, before any duplicate of it (also at distance 0)
                    exact2[candidates == own] = -1.0
                near2, best = exact2.topk(k, largest=False, sorted=True)  # nearest first, itself before its twins
                idx = candidates.gather(1, best)
                if wanted < n:  # every point left out lies at least this far, give or take the rounding
                    margin = self.ROUNDING * (q_norms + self._max_norm)
                    unsure = (near2[:, -1] + margin >= approx[:, -1]).nonzero().flatten()
                    if len(unsure):  # those rows only: searched again, their exact distances sorted as above
                        found = self._search64(q[unsure], start + unsure if self_first else None, k)
                        found2 = (q[unsure, None, :] - self._points[found]).pow(2).sum(-1)
                        if own is not None:
                            found2[found == own[unsure]] = -1.0
                        found2, order = found2.sort(1)
                        idx[unsure], near2[unsure] = found.gather(1, order), found2
                indices[start:start + len(q)] = idx.numpy()
                dists[start:start + len(q)] = near2.clamp(min=0).sqrt().numpy()
        return indices, dists

    ROUNDING = 1e-5  # float32's relative error in |q|^2 - 2 q.p + |p|^2, with room for the sums of a few hundred terms

    def _search64(self, q: torch.Tensor, own: torch.Tensor | None, k: int) -> torch.Tensor:
        """The k nearest points to the rows of q, in float64 (whose rounding is a billion times smaller)."""
        points = self._points.double()
        d2 = torch.addmm(points.pow(2).sum(1), q.double(), points.T, alpha=-2).add_(q.double().pow(2).sum(1)[:, None])
        if own is not None:
            d2[torch.arange(len(q)), own] = -1.0
        return d2.topk(k, largest=False, sorted=False).indices

    def graph(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(indices int32, distances float32) of each point's k nearest points, itself first."""
        return self._search(self._points, k, self_first=True)

    def query(self, queries, k: int, epsilon: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(indices, distances) of the k nearest points to each query; epsilon (an NN-descent knob) is ignored."""
        queries = np.asarray(queries, dtype=np.float32) - self._mean
        return self._search(torch.from_numpy(np.ascontiguousarray(queries)), k, self_first=False)


def vote(labels, neighbours: np.ndarray, num_classes: int | None = None) -> np.ndarray:
    """The majority class among each row of neighbour positions; a tie goes to the lowest class number, as in
    scikit-learn's KNeighborsClassifier (uniform weights)."""
    labels = np.asarray(labels, dtype=np.int64)
    num_classes = int(labels.max()) + 1 if num_classes is None else num_classes
    counts = np.zeros((len(neighbours), num_classes), dtype=np.int64)
    np.add.at(counts, (np.arange(len(neighbours))[:, None], labels[neighbours]), 1)
    return counts.argmax(1)  # the first of the largest counts: the lowest tied class
