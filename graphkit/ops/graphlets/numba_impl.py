"""The Numba backend: the compiled core's algorithm (``cpp/graphlets.cpp``) in Numba.

Used when ``graphkit._cpp`` is absent. For a row ``u`` and a column ``v`` the other two nodes
of a 4-node graphlet lie in ``T = N(u) & N(v)``, ``U = N(u) \\ N[v]``, ``V = N(v) \\ N[u]`` or
outside; each matrix entry is a closed form in ``|T|, |U|, |V|`` and the edge counts between these
sets, which the row pass gets from sums over common neighbours and from 3-walks. Results are
identical to the compiled backend's (the tests check both against the brute-force oracle).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from graphkit.ops.graphlets._checks import check_count_rows, check_simple_csr
from graphkit.ops.graphlets.keys import KEYS

__all__ = ["NumbaOrbitCounter", "orbit_counter"]

_NKEYS = len(KEYS)
_HOP2 = 19  # first 2-hop key
_HOP3 = 27  # the 3-hop key
_GDV_SOURCE = np.array([0, 1, 2, 3, 4, 6, 7, 8, 9, 10, 12, 11, 15, 16, 18], dtype=np.int64)
_GDV_DIVISOR = np.array([1, 1, 2, 2, 1, 1, 1, 3, 2, 1, 1, 1, 2, 2, 3], dtype=np.int64)
_EDGE_PAIRS = np.array([[1, 2], [3, -1], [4, 5], [6, -1], [7, 8], [9, -1], [10, 11], [12, -1],
                        [13, 14], [15, 16], [17, -1], [18, -1]], dtype=np.int64)


@njit(cache=True)
def _precompute(indptr, indices, n):
    m2 = indptr[n]
    deg = np.empty(n, np.int64)
    for u in range(n):
        deg[u] = indptr[u + 1] - indptr[u]
    tri = np.zeros(m2, np.int64)
    tri_node = np.zeros(n, np.int64)
    deg_sum = np.zeros(n, np.int64)
    upper = np.empty(n, np.int64)
    cn_ptr = np.zeros(m2 + 1, np.int64)
    stamp = np.full(n, -1, np.int64)
    for u in range(n):
        q = indptr[u]
        while q < indptr[u + 1] and indices[q] <= u:
            q += 1
        upper[u] = q
        for p in range(indptr[u], indptr[u + 1]):
            stamp[indices[p]] = u
            deg_sum[u] += deg[indices[p]]
        for p in range(indptr[u], indptr[u + 1]):
            v = indices[p]
            count = 0
            for r in range(indptr[v], indptr[v + 1]):
                if stamp[indices[r]] == u:
                    count += 1
            tri[p] = count
            tri_node[u] += count
            cn_ptr[p + 1] = count if v > u else 0
    for p in range(m2):
        cn_ptr[p + 1] += cn_ptr[p]
    cn = np.empty(cn_ptr[m2], np.int32)
    stamp[:] = -1
    for u in range(n):
        for p in range(indptr[u], indptr[u + 1]):
            stamp[indices[p]] = u
        for p in range(upper[u], indptr[u + 1]):
            v = indices[p]
            s = cn_ptr[p]
            for r in range(indptr[v], indptr[v + 1]):
                if stamp[indices[r]] == u:
                    cn[s] = indices[r]
                    s += 1
    for u in range(n):
        tri_node[u] //= 2
    return deg, tri, tri_node, deg_sum, upper, cn_ptr, cn


@njit(cache=True)
def _row_pass(u, indptr, indices, deg, tri, upper, cn_ptr, cn, acc, stamp, touched):
    """Fill acc[0..4] (c, sum d_x, sum tri(u,x), sum tri(x,v), E(T,T)) for row u."""
    k = 0
    for q in range(indptr[u], indptr[u + 1]):
        stamp[indices[q]] = u
    for q in range(indptr[u], indptr[u + 1]):
        x = indices[q]
        dx = deg[x]
        tux = tri[q]
        for r in range(indptr[x], indptr[x + 1]):
            v = indices[r]
            if v == u:
                continue
            if acc[0, v] == 0:
                touched[k] = v
                k += 1
            acc[0, v] += 1
            acc[1, v] += dx
            acc[2, v] += tux
            acc[3, v] += tri[r]
    for q in range(indptr[u], indptr[u + 1]):
        x = indices[q]
        for r in range(upper[x], indptr[x + 1]):
            if stamp[indices[r]] != u:
                continue
            for s in range(cn_ptr[r], cn_ptr[r + 1]):
                z = cn[s]
                if z != u:
                    acc[4, z] += 1
    return k


@njit(cache=True)
def _reset(acc, touched, k):
    for i in range(k):
        v = touched[i]
        for j in range(5):
            acc[j, v] = 0


@njit(cache=True)
def _edge_counts(u, q, indptr, indices, deg, tri, tri_node, deg_sum, acc, out):
    v = indices[q]
    c = tri[q]
    du = deg[u]
    dv = deg[v]
    nu = du - 1 - c
    nv = dv - 1 - c
    tt = acc[4, v]
    dt = acc[1, v]
    a3 = du
    for r in range(indptr[v], indptr[v + 1]):
        if indices[r] != u:
            a3 += acc[0, indices[r]]
    e_tu = acc[2, v] - c - 2 * tt
    e_tv = acc[3, v] - c - 2 * tt
    e_to = dt - 2 * tt - e_tu - e_tv - 2 * c
    e_uu = tri_node[u] - c - e_tu - tt
    e_vv = tri_node[v] - c - e_tv - tt
    e_uv = a3 - dv - nu - c - e_tu - 2 * tt - e_tv
    e_uo = deg_sum[u] - dv - dt - 2 * e_uu - e_tu - e_uv - nu
    e_vo = deg_sum[v] - du - dt - 2 * e_vv - e_tv - e_uv - nv
    out[0] = 1
    out[1] = nv
    out[2] = nu
    out[3] = c
    out[4] = e_vo
    out[5] = e_uo
    out[6] = nu * nv - e_uv
    out[7] = nv * (nv - 1) // 2 - e_vv
    out[8] = nu * (nu - 1) // 2 - e_uu
    out[9] = e_uv
    out[10] = e_vv
    out[11] = e_uu
    out[12] = e_to
    out[13] = c * nv - e_tv
    out[14] = c * nu - e_tu
    out[15] = e_tv
    out[16] = e_tu
    out[17] = c * (c - 1) // 2 - tt
    out[18] = tt


@njit(cache=True)
def _push(bk, bc, bv, size, key, col, val):
    if size == bk.shape[0]:
        cap = 2 * size + 1024
        nk = np.empty(cap, np.int8)
        nc = np.empty(cap, np.int32)
        nv = np.empty(cap, np.int64)
        nk[:size] = bk[:size]
        nc[:size] = bc[:size]
        nv[:size] = bv[:size]
        bk, bc, bv = nk, nc, nv
    bk[size] = key
    bc[size] = col
    bv[size] = val
    return bk, bc, bv, size + 1


@njit(cache=True)
def _count_rows(indptr, indices, n, deg, tri, tri_node, deg_sum, upper, cn_ptr, cn,
                r0, r1, want, hop3_mode):
    """Triplets (key, col, value) in row order and per-row counts for rows [r0, r1)."""
    acc = np.zeros((5, n), np.int64)
    stamp = np.full(n, -1, np.int64)
    touched = np.empty(n, np.int64)
    a3acc = np.zeros(n, np.int64)
    touched3 = np.empty(n, np.int64)
    counts = np.zeros((r1 - r0, _NKEYS), np.int64)
    bk = np.empty(1024, np.int8)
    bc = np.empty(1024, np.int32)
    bv = np.empty(1024, np.int64)
    size = 0
    e = np.zeros(19, np.int64)
    vals = np.zeros(8, np.int64)
    want_hop2 = False
    for k in range(_HOP2, _HOP3):
        want_hop2 = want_hop2 or want[k]
    want_hop3 = want[_HOP3]
    block = 1
    if want_hop3 and hop3_mode == 2:
        block = max(1, min(128, (1 << 22) // max(n, 1)))
    dense_d = np.zeros((n, block), np.int64)
    dense_q = np.zeros((block, n), np.int64)
    dense_out = np.zeros((n, block), np.int64)
    for b0 in range(r0, r1, block):
        b1 = min(r1, b0 + block)
        for u in range(b0, b1):
            k = _row_pass(u, indptr, indices, deg, tri, upper, cn_ptr, cn, acc, stamp, touched)
            for q in range(indptr[u], indptr[u + 1]):
                _edge_counts(u, q, indptr, indices, deg, tri, tri_node, deg_sum, acc, e)
                for key in range(19):
                    if want[key] and e[key] != 0:
                        bk, bc, bv, size = _push(bk, bc, bv, size, key, indices[q], e[key])
                        counts[u - r0, key] += 1
            if want_hop2:
                cols = np.sort(touched[:k])
                for v in cols:
                    if stamp[v] == u:
                        continue
                    c = acc[0, v]
                    tt = acc[4, v]
                    e_tu = acc[2, v] - 2 * tt
                    e_tv = acc[3, v] - 2 * tt
                    vals[0] = c
                    vals[1] = c * (deg[v] - c) - e_tv
                    vals[2] = c * (deg[u] - c) - e_tu
                    vals[3] = acc[1, v] - 2 * c - 2 * tt - e_tu - e_tv
                    vals[4] = c * (c - 1) // 2 - tt
                    vals[5] = e_tv
                    vals[6] = e_tu
                    vals[7] = tt
                    for j in range(8):
                        if want[_HOP2 + j] and vals[j] != 0:
                            bk, bc, bv, size = _push(bk, bc, bv, size, _HOP2 + j, v, vals[j])
                            counts[u - r0, _HOP2 + j] += 1
            if want_hop3 and hop3_mode != 2:
                k3 = 0
                for i in range(k):
                    y = touched[i]
                    w = acc[0, y]
                    for r in range(indptr[y], indptr[y + 1]):
                        v = indices[r]
                        if a3acc[v] == 0:
                            touched3[k3] = v
                            k3 += 1
                        a3acc[v] += w
                cols = np.sort(touched3[:k3])
                for v in cols:
                    if v == u or stamp[v] == u:
                        continue
                    value = a3acc[v]
                    if acc[0, v] > 0:
                        value -= acc[2, v] + acc[3, v] - 2 * acc[4, v]
                    if value != 0:
                        bk, bc, bv, size = _push(bk, bc, bv, size, _HOP3, v, value)
                        counts[u - r0, _HOP3] += 1
                for i in range(k3):
                    a3acc[touched3[i]] = 0
            elif want_hop3:
                j = u - b0
                for i in range(k):
                    y = touched[i]
                    dense_d[y, j] = acc[0, y]
                    dense_q[j, y] = acc[2, y] + acc[3, y] - 2 * acc[4, y]
                dense_d[u, j] = deg[u]
            _reset(acc, touched, k)
        if want_hop3 and hop3_mode == 2:
            dense_out[:, :] = 0
            for v in range(n):
                for r in range(indptr[v], indptr[v + 1]):
                    y = indices[r]
                    for j in range(block):
                        dense_out[v, j] += dense_d[y, j]
            for j in range(b1 - b0):
                u = b0 + j
                for q in range(indptr[u], indptr[u + 1]):
                    stamp[indices[q]] = u
                stamp[u] = u
                for v in range(n):
                    if stamp[v] == u:
                        continue
                    value = dense_out[v, j] - dense_q[j, v]
                    if value != 0:
                        bk, bc, bv, size = _push(bk, bc, bv, size, _HOP3, v, value)
                        counts[u - r0, _HOP3] += 1
                stamp[u] = -1
            dense_d[:, :] = 0
            dense_q[:, :] = 0
    return bk[:size], bc[:size], bv[:size], counts


@njit(cache=True)
def _gdv(indptr, indices, n, deg, tri, tri_node, deg_sum, upper, cn_ptr, cn, source, divisor):
    acc = np.zeros((5, n), np.int64)
    stamp = np.full(n, -1, np.int64)
    touched = np.empty(n, np.int64)
    e = np.zeros(19, np.int64)
    out = np.zeros((n, 15), np.int64)
    for u in range(n):
        k = _row_pass(u, indptr, indices, deg, tri, upper, cn_ptr, cn, acc, stamp, touched)
        for q in range(indptr[u], indptr[u + 1]):
            _edge_counts(u, q, indptr, indices, deg, tri, tri_node, deg_sum, acc, e)
            for o in range(15):
                out[u, o] += e[source[o]]
        for o in range(15):
            out[u, o] //= divisor[o]
        _reset(acc, touched, k)
    return out


@njit(cache=True)
def _edge_gdv(indptr, indices, n, deg, tri, tri_node, deg_sum, upper, cn_ptr, cn, pairs):
    m = indptr[n] // 2
    acc = np.zeros((5, n), np.int64)
    stamp = np.full(n, -1, np.int64)
    touched = np.empty(n, np.int64)
    e = np.zeros(19, np.int64)
    edges = np.empty((m, 2), np.int32)
    out = np.zeros((m, 12), np.int64)
    row = 0
    for u in range(n):
        k = _row_pass(u, indptr, indices, deg, tri, upper, cn_ptr, cn, acc, stamp, touched)
        for q in range(upper[u], indptr[u + 1]):
            _edge_counts(u, q, indptr, indices, deg, tri, tri_node, deg_sum, acc, e)
            edges[row, 0] = u
            edges[row, 1] = indices[q]
            for o in range(12):
                out[row, o] = e[pairs[o, 0]] + (e[pairs[o, 1]] if pairs[o, 1] >= 0 else 0)
            row += 1
        _reset(acc, touched, k)
    return edges, out


class NumbaOrbitCounter:
    """Numba counter with the interface of ``graphkit._cpp.OrbitCounter``."""

    def __init__(self, indptr: np.ndarray, indices: np.ndarray) -> None:
        check_simple_csr(indptr, indices)
        self._indptr = np.ascontiguousarray(indptr, dtype=np.int64)
        self._indices = np.ascontiguousarray(indices, dtype=np.int32)
        if len(self._indptr) < 1 or self._indptr[-1] != len(self._indices):
            raise ValueError("indptr[-1] must equal len(indices)")
        self.num_nodes = len(self._indptr) - 1
        self.num_edges = len(self._indices) // 2
        self._pre = _precompute(self._indptr, self._indices, self.num_nodes)

    def count_rows(self, r0: int, r1: int, mask: int, hop3_mode: int = 0) -> list:
        n = self.num_nodes
        check_count_rows(r0, r1, mask, hop3_mode, n)
        want = np.array([bool(mask >> k & 1) for k in range(_NKEYS)])
        if hop3_mode == 0:
            deg, deg_sum = self._pre[0], self._pre[3]
            walks = float(np.dot(deg.astype(np.float64), deg_sum)) / max(n, 1)
            hop3_mode = 2 if walks > 0.5 * len(self._indices) + 4.0 * n else 1
        keys, cols, vals, counts = _count_rows(self._indptr, self._indices, n, *self._pre,
                                               r0, r1, want, hop3_mode)
        if len(vals) and vals.max() > np.iinfo(np.int32).max:
            raise OverflowError(f"orbit count {int(vals.max())} does not fit in int32")
        order = np.argsort(keys, kind="stable")
        bounds = np.concatenate([[0], np.cumsum(np.bincount(keys, minlength=_NKEYS))])
        out: list = [None] * _NKEYS
        for k in range(_NKEYS):
            if not want[k]:
                continue
            sel = order[bounds[k]:bounds[k + 1]]
            indptr = np.concatenate([[0], np.cumsum(counts[:, k])]).astype(np.int64)
            out[k] = (indptr, cols[sel], vals[sel].astype(np.int32))
        return out

    def gdv(self) -> np.ndarray:
        return _gdv(self._indptr, self._indices, self.num_nodes, *self._pre, _GDV_SOURCE,
                    _GDV_DIVISOR)

    def edge_gdv(self) -> tuple[np.ndarray, np.ndarray]:
        return _edge_gdv(self._indptr, self._indices, self.num_nodes, *self._pre, _EDGE_PAIRS)


def orbit_counter(indptr: np.ndarray, indices: np.ndarray) -> NumbaOrbitCounter:
    """A Numba counter over a simple undirected CSR graph (sorted, both directions)."""
    return NumbaOrbitCounter(indptr, indices)
