// Graphlet-orbit adjacency counting; see graphlets.hpp for the contract.
//
// For a row u and a column v != u let T = N(u) & N(v) (c = |T|), U = N(u) \ N[v],
// V = N(v) \ N[u], O = the remaining nodes. Every 4-node graphlet holding u and v is fixed by
// where its other two nodes lie among T, U, V, O and whether they are adjacent, so each of the
// 28 matrices is a closed form in c, |U|, |V| and the edge counts E(X, Y) between those sets.
// The row pass obtains those edge counts from five per-pair sums over common neighbours x:
//   ac = c, ad = sum d_x, acu = sum tri(u, x), acv = sum tri(x, v), att = E(T, T),
// and, for 3-hop pairs, from the 3-walk count (A^3)[u, v] = E(N(u), N(v)).
#include "graphlets.hpp"

#include <algorithm>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>

namespace graphkit::graphlets {

namespace {

inline int64_t choose2(int64_t k) { return k * (k - 1) / 2; }

// Indices of keys by name, to keep the formulas readable.
enum Key : int {
  kA = 0, k1_2, k2_1, k3_3, k4_5, k5_4, k5_5, k6_7, k7_6, k8_8, k9_11, k11_9, k10_10, k10_11,
  k11_10, k12_13, k13_12, k13_13, k14_14, h2_1_1, h2_4_5, h2_5_4, h2_6_6, h2_8_8, h2_9_10,
  h2_10_9, h2_12_12, h3_4_4
};

constexpr uint32_t kHop2Mask = ((1u << 8) - 1) << h2_1_1;

void emit(SparseRows& m, int32_t col, int64_t value) {
  if (value < 0) throw std::logic_error("negative orbit count: the input is not a simple graph");
  if (value > std::numeric_limits<int32_t>::max()) {
    throw std::overflow_error("orbit count " + std::to_string(value) +
                              " does not fit in int32");
  }
  m.indices.push_back(col);
  m.data.push_back(static_cast<int32_t>(value));
}

// Sorts `list` (distinct ids < n); a dense scan replaces the sort when the list is long.
void sort_ids(std::vector<int32_t>& list, const std::vector<int64_t>& dense, int64_t n) {
  if (static_cast<int64_t>(list.size()) * 16 < n) {
    std::sort(list.begin(), list.end());
    return;
  }
  list.clear();
  for (int64_t v = 0; v < n; ++v) {
    if (dense[v] != 0) list.push_back(static_cast<int32_t>(v));
  }
}

}  // namespace

OrbitCounter::OrbitCounter(int64_t n, const int64_t* indptr, const int32_t* indices)
    : n_(n), indptr_(indptr, indptr + n + 1), indices_(indices, indices + indptr[n]) {
  deg_.assign(n, 0);
  tri_node_.assign(n, 0);
  deg_sum_.assign(n, 0);
  upper_.assign(n, 0);
  tri_.assign(indices_.size(), 0);
  cn_ptr_.assign(indices_.size() + 1, 0);
  stamp_.assign(n, -1);
  for (int64_t u = 0; u < n; ++u) deg_[u] = indptr_[u + 1] - indptr_[u];
  for (int64_t u = 0; u < n; ++u) {
    int64_t q = indptr_[u];
    while (q < indptr_[u + 1] && indices_[q] <= u) ++q;
    upper_[u] = q;
    for (int64_t p = indptr_[u]; p < indptr_[u + 1]; ++p) {
      stamp_[indices_[p]] = u;
      deg_sum_[u] += deg_[indices_[p]];
    }
    for (int64_t p = indptr_[u]; p < indptr_[u + 1]; ++p) {
      const int64_t v = indices_[p];
      int32_t count = 0;
      for (int64_t r = indptr_[v]; r < indptr_[v + 1]; ++r) {
        const int32_t z = indices_[r];
        if (stamp_[z] == u) {
          ++count;
          if (v > u) cn_.push_back(z);
        }
      }
      tri_[p] = count;
      tri_node_[u] += count;
      cn_ptr_[p + 1] = static_cast<int64_t>(cn_.size());
    }
  }
  for (int64_t u = 0; u < n; ++u) tri_node_[u] /= 2;
  std::fill(stamp_.begin(), stamp_.end(), -1);
  ac_.assign(n, 0);
  ad_.assign(n, 0);
  acu_.assign(n, 0);
  acv_.assign(n, 0);
  att_.assign(n, 0);
}

void OrbitCounter::row_pass(int64_t u) {
  reset_row();
  row_ = u;
  const int64_t begin = indptr_[u], end = indptr_[u + 1];
  for (int64_t q = begin; q < end; ++q) stamp_[indices_[q]] = u;
  // 2-walks u - x - v: common neighbours and sums over them.
  for (int64_t q = begin; q < end; ++q) {
    const int64_t x = indices_[q];
    const int64_t dx = deg_[x], tux = tri_[q];
    for (int64_t r = indptr_[x]; r < indptr_[x + 1]; ++r) {
      const int32_t v = indices_[r];
      if (v == u) continue;
      if (ac_[v] == 0) touched_.push_back(v);
      ac_[v] += 1;
      ad_[v] += dx;
      acu_[v] += tux;
      acv_[v] += tri_[r];
    }
  }
  // Edges (x, y) inside N(u): every other common neighbour z of x and y sees the edge in T.
  for (int64_t q = begin; q < end; ++q) {
    const int64_t x = indices_[q];
    for (int64_t r = upper_[x]; r < indptr_[x + 1]; ++r) {
      if (stamp_[indices_[r]] != u) continue;
      for (int64_t s = cn_ptr_[r]; s < cn_ptr_[r + 1]; ++s) {
        const int32_t z = cn_[s];
        if (z != u) att_[z] += 1;
      }
    }
  }
}

void OrbitCounter::reset_row() {
  for (int32_t v : touched_) ac_[v] = ad_[v] = acu_[v] = acv_[v] = att_[v] = 0;
  touched_.clear();
}

int64_t OrbitCounter::pair_q(int64_t v) const { return acu_[v] + acv_[v] - 2 * att_[v]; }

void OrbitCounter::edge_counts(int64_t u, int64_t q, EdgeCounts& e) const {
  const int64_t v = indices_[q];
  int64_t a3 = deg_[u];  // (A^3)[u, v] = sum over y in N(v) of (A^2)[u, y]
  for (int64_t r = indptr_[v]; r < indptr_[v + 1]; ++r) {
    if (indices_[r] != u) a3 += ac_[indices_[r]];
  }
  edge_values(u, v, tri_[q], att_[v], ad_[v], acu_[v], acv_[v], a3, e);
}

void OrbitCounter::edge_values(int64_t u, int64_t v, int64_t c, int64_t tt, int64_t dt,
                               int64_t ctu, int64_t ctv, int64_t a3, EdgeCounts& e) const {
  const int64_t du = deg_[u], dv = deg_[v];
  const int64_t nu = du - 1 - c, nv = dv - 1 - c;  // |U|, |V|
  const int64_t e_tu = ctu - c - 2 * tt;
  const int64_t e_tv = ctv - c - 2 * tt;
  const int64_t e_to = dt - 2 * tt - e_tu - e_tv - 2 * c;
  const int64_t e_uu = tri_node_[u] - c - e_tu - tt;
  const int64_t e_vv = tri_node_[v] - c - e_tv - tt;
  const int64_t e_uv = a3 - dv - nu - c - e_tu - 2 * tt - e_tv;
  const int64_t e_uo = deg_sum_[u] - dv - dt - 2 * e_uu - e_tu - e_uv - nu;
  const int64_t e_vo = deg_sum_[v] - du - dt - 2 * e_vv - e_tv - e_uv - nv;
  int64_t* o = e.v;
  o[kA] = 1;
  o[k1_2] = nv;
  o[k2_1] = nu;
  o[k3_3] = c;
  o[k4_5] = e_vo;
  o[k5_4] = e_uo;
  o[k5_5] = nu * nv - e_uv;
  o[k6_7] = choose2(nv) - e_vv;
  o[k7_6] = choose2(nu) - e_uu;
  o[k8_8] = e_uv;
  o[k9_11] = e_vv;
  o[k11_9] = e_uu;
  o[k10_10] = e_to;
  o[k10_11] = c * nv - e_tv;
  o[k11_10] = c * nu - e_tu;
  o[k12_13] = e_tv;
  o[k13_12] = e_tu;
  o[k13_13] = choose2(c) - tt;
  o[k14_14] = tt;
}

void OrbitCounter::count_rows(int64_t r0, int64_t r1, uint32_t mask, int hop3_mode,
                              std::vector<SparseRows>& out) {
  if (r0 < 0 || r1 > n_ || r0 > r1) throw std::invalid_argument("row range out of bounds");
  out.assign(kNumKeys, SparseRows{});
  for (int k = 0; k < kNumKeys; ++k) {
    if (mask >> k & 1u) out[k].indptr.assign(1, 0);
  }
  const bool want_hop3 = mask >> h3_4_4 & 1u;
  if (hop3_mode == 0) {  // dense blocks win when rows reach a large part of the graph
    double walks = 0.0;
    for (int64_t a = 0; a < n_; ++a) walks += static_cast<double>(deg_[a]) * deg_sum_[a];
    const double sparse_cost = walks / std::max<int64_t>(n_, 1);
    const double dense_cost = 0.5 * static_cast<double>(indices_.size()) + 4.0 * n_;
    hop3_mode = sparse_cost > dense_cost ? 2 : 1;
  }
  const int64_t block = hop3_mode == 2 && want_hop3
                            ? std::clamp<int64_t>((int64_t{1} << 22) / std::max<int64_t>(n_, 1),
                                                  1, 128)
                            : 1;
  std::vector<int64_t> dense_d, dense_q, dense_out;  // n x block, row-major
  if (hop3_mode == 2 && want_hop3) {
    dense_d.assign(n_ * block, 0);
    dense_q.assign(n_ * block, 0);
    dense_out.assign(n_ * block, 0);
  }
  std::vector<int64_t> a3acc;
  std::vector<int32_t> touched3;
  if (hop3_mode == 1 && want_hop3) a3acc.assign(n_, 0);
  std::vector<int32_t> hop2_cols;
  EdgeCounts e{};

  for (int64_t b0 = r0; b0 < r1; b0 += block) {
    const int64_t b1 = std::min(r1, b0 + block);
    for (int64_t u = b0; u < b1; ++u) {
      row_pass(u);
      // hop 1: the edges of u, in column order.
      for (int64_t q = indptr_[u]; q < indptr_[u + 1]; ++q) {
        edge_counts(u, q, e);
        for (int k = 0; k <= k14_14; ++k) {
          if ((mask >> k & 1u) && e.v[k] != 0) emit(out[k], indices_[q], e.v[k]);
        }
      }
      // hop 2: non-adjacent v with common neighbours.
      if (mask & kHop2Mask) {
        hop2_cols = touched_;
        sort_ids(hop2_cols, ac_, n_);
        for (int32_t v : hop2_cols) {
          if (stamp_[v] == u) continue;
          const int64_t c = ac_[v], tt = att_[v];
          const int64_t e_tu = acu_[v] - 2 * tt, e_tv = acv_[v] - 2 * tt;
          const int64_t vals[8] = {c,
                                   c * (deg_[v] - c) - e_tv,
                                   c * (deg_[u] - c) - e_tu,
                                   ad_[v] - 2 * c - 2 * tt - e_tu - e_tv,
                                   choose2(c) - tt,
                                   e_tv,
                                   e_tu,
                                   tt};
          for (int k = 0; k < 8; ++k) {
            if ((mask >> (h2_1_1 + k) & 1u) && vals[k] != 0) emit(out[h2_1_1 + k], v, vals[k]);
          }
        }
      }
      // hop 3: induced P4 ends, (A^3)[u, v] minus the walks through common neighbours.
      if (want_hop3 && hop3_mode == 1) {
        for (int32_t y : touched_) {
          const int64_t w = ac_[y];
          for (int64_t r = indptr_[y]; r < indptr_[y + 1]; ++r) {
            const int32_t v = indices_[r];
            if (a3acc[v] == 0) touched3.push_back(v);
            a3acc[v] += w;
          }
        }
        sort_ids(touched3, a3acc, n_);
        for (int32_t v : touched3) {
          if (v == u || stamp_[v] == u) continue;
          const int64_t value = a3acc[v] - (ac_[v] > 0 ? pair_q(v) : 0);
          if (value != 0) emit(out[h3_4_4], v, value);
        }
        for (int32_t v : touched3) a3acc[v] = 0;
        touched3.clear();
      } else if (want_hop3) {
        const int64_t j = u - b0;
        for (int32_t y : touched_) {
          dense_d[y * block + j] = ac_[y];
          dense_q[j * n_ + y] = pair_q(y);
        }
        dense_d[u * block + j] = deg_[u];
      }
      for (int k = 0; k < kNumKeys; ++k) {
        if ((mask >> k & 1u) && !(k == h3_4_4 && hop3_mode == 2)) {
          out[k].indptr.push_back(static_cast<int64_t>(out[k].indices.size()));
        }
      }
    }
    if (want_hop3 && hop3_mode == 2) {
      const int64_t width = b1 - b0;
      // dense_out = A @ dense_d: row v is the sum of rows N(v).
      for (int64_t v = 0; v < n_; ++v) {
        int64_t* dst = &dense_out[v * block];
        std::memset(dst, 0, sizeof(int64_t) * block);
        for (int64_t r = indptr_[v]; r < indptr_[v + 1]; ++r) {
          const int64_t* src = &dense_d[static_cast<int64_t>(indices_[r]) * block];
          for (int64_t j = 0; j < block; ++j) dst[j] += src[j];
        }
      }
      // Transpose in tiles so that each output row is read contiguously.
      constexpr int64_t kTile = 64;
      for (int64_t v0 = 0; v0 < n_; v0 += kTile) {
        const int64_t v1 = std::min(n_, v0 + kTile);
        for (int64_t j = 0; j < width; ++j) {
          for (int64_t v = v0; v < v1; ++v) dense_d[j * n_ + v] = dense_out[v * block + j];
        }
      }
      for (int64_t j = 0; j < width; ++j) {
        const int64_t u = b0 + j;
        for (int64_t q = indptr_[u]; q < indptr_[u + 1]; ++q) stamp_[indices_[q]] = u;
        stamp_[u] = u;
        SparseRows& m = out[h3_4_4];
        const int64_t* a3 = &dense_d[j * n_];
        const int64_t* sub = &dense_q[j * n_];
        for (int64_t v = 0; v < n_; ++v) {
          if (stamp_[v] == u) continue;
          const int64_t value = a3[v] - sub[v];
          if (value != 0) emit(m, static_cast<int32_t>(v), value);
        }
        m.indptr.push_back(static_cast<int64_t>(m.indices.size()));
        stamp_[u] = -1;
        for (int64_t q = indptr_[u]; q < indptr_[u + 1]; ++q) stamp_[indices_[q]] = -1;
      }
      std::fill(dense_d.begin(), dense_d.end(), 0);
      std::fill(dense_q.begin(), dense_q.end(), 0);
    }
  }
  reset_row();
  std::fill(stamp_.begin(), stamp_.end(), -1);
}

void OrbitCounter::edge_pass(int64_t u, std::vector<int64_t>& k4,
                             const std::vector<int64_t>& rev, std::vector<EdgeCounts>& rows) {
  reset_row();
  const int64_t begin = indptr_[u], end = indptr_[u + 1];
  for (int64_t q = begin; q < end; ++q) {
    stamp_[indices_[q]] = u;
    acu_[indices_[q]] = tri_[q];  // tri(u, x) by neighbour x
  }
  // 2-walk counts (A^2)[u, .], needed for the 3-walks (A^3)[u, v] on the edges.
  for (int64_t q = begin; q < end; ++q) {
    const int64_t x = indices_[q];
    for (int64_t r = indptr_[x]; r < indptr_[x + 1]; ++r) {
      const int32_t v = indices_[r];
      if (v == u) continue;
      if (ac_[v] == 0) touched_.push_back(v);
      ac_[v] += 1;
    }
  }
  // K4s {u, z, x, y} with z > u: edges (x, y) inside N(u) and common neighbours z of x, y.
  for (int64_t q = begin; q < end; ++q) {
    const int64_t x = indices_[q];
    for (int64_t r = upper_[x]; r < indptr_[x + 1]; ++r) {
      if (stamp_[indices_[r]] != u) continue;
      const int32_t* lo = cn_.data() + cn_ptr_[r];
      const int32_t* hi = cn_.data() + cn_ptr_[r + 1];
      for (const int32_t* z = std::upper_bound(lo, hi, static_cast<int32_t>(u)); z < hi; ++z) {
        att_[*z] += (stamp_[*z] == u);  // branch-free: only neighbours of u are read back
      }
    }
  }
  for (int64_t q = upper_[u]; q < end; ++q) k4[q] = k4[rev[q]] = att_[indices_[q]];
  rows.resize(end - begin);
  for (int64_t q = begin; q < end; ++q) {
    const int64_t v = indices_[q];
    int64_t c = 0, dt = 0, ctu = 0, ctv = 0, a3 = deg_[u];
    for (int64_t r = indptr_[v]; r < indptr_[v + 1]; ++r) {
      const int32_t y = indices_[r];
      if (y == u) continue;
      a3 += ac_[y];
      if (stamp_[y] == u) {
        ++c;
        dt += deg_[y];
        ctu += acu_[y];
        ctv += tri_[r];
      }
    }
    edge_values(u, v, c, k4[q], dt, ctu, ctv, a3, rows[q - begin]);
  }
  for (int64_t q = begin; q < end; ++q) acu_[indices_[q]] = att_[indices_[q]] = 0;
}

namespace {

// rev[q] = the position of the reverse of the edge at position q.
std::vector<int64_t> reverse_positions(const std::vector<int64_t>& indptr,
                                       const std::vector<int32_t>& indices, int64_t n) {
  std::vector<int64_t> rev(indices.size());
  for (int64_t u = 0; u < n; ++u) {
    for (int64_t q = indptr[u]; q < indptr[u + 1]; ++q) {
      const int64_t v = indices[q];
      const auto* first = indices.data() + indptr[v];
      const auto* last = indices.data() + indptr[v + 1];
      rev[q] = std::lower_bound(first, last, static_cast<int32_t>(u)) - indices.data();
    }
  }
  return rev;
}

}  // namespace

void OrbitCounter::gdv(int64_t* out) {
  static constexpr int kSource[15] = {kA,    k1_2,  k2_1,   k3_3,   k4_5,   k5_5,   k6_7, k7_6,
                                      k8_8,  k9_11, k10_10, k11_9,  k12_13, k13_12, k14_14};
  static constexpr int kDivisor[15] = {1, 1, 2, 2, 1, 1, 1, 3, 2, 1, 1, 1, 2, 2, 3};
  const std::vector<int64_t> rev = reverse_positions(indptr_, indices_, n_);
  std::vector<int64_t> k4(indices_.size(), 0);
  std::vector<EdgeCounts> rows;
  for (int64_t u = 0; u < n_; ++u) {
    edge_pass(u, k4, rev, rows);
    int64_t sums[15] = {0};
    for (const EdgeCounts& e : rows) {
      for (int o = 0; o < 15; ++o) sums[o] += e.v[kSource[o]];
    }
    for (int o = 0; o < 15; ++o) out[u * 15 + o] = sums[o] / kDivisor[o];
  }
  reset_row();
  std::fill(stamp_.begin(), stamp_.end(), -1);
}

void OrbitCounter::edge_gdv(int32_t* edges, int64_t* out) {
  // (first key, transpose key or -1) for each of the 12 edge orbits.
  static constexpr int kPairs[12][2] = {{k1_2, k2_1},     {k3_3, -1},       {k4_5, k5_4},
                                        {k5_5, -1},       {k6_7, k7_6},     {k8_8, -1},
                                        {k9_11, k11_9},   {k10_10, -1},     {k10_11, k11_10},
                                        {k12_13, k13_12}, {k13_13, -1},     {k14_14, -1}};
  const std::vector<int64_t> rev = reverse_positions(indptr_, indices_, n_);
  std::vector<int64_t> k4(indices_.size(), 0);
  std::vector<EdgeCounts> rows;
  int64_t row = 0;
  for (int64_t u = 0; u < n_; ++u) {
    edge_pass(u, k4, rev, rows);
    for (int64_t q = upper_[u]; q < indptr_[u + 1]; ++q) {
      const EdgeCounts& e = rows[q - indptr_[u]];
      edges[2 * row] = static_cast<int32_t>(u);
      edges[2 * row + 1] = indices_[q];
      for (int o = 0; o < 12; ++o) {
        out[row * 12 + o] = e.v[kPairs[o][0]] + (kPairs[o][1] >= 0 ? e.v[kPairs[o][1]] : 0);
      }
      ++row;
    }
  }
  reset_row();
  std::fill(stamp_.begin(), stamp_.end(), -1);
}

}  // namespace graphkit::graphlets
