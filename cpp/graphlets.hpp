// Graphlet-orbit adjacency counting (GRADCO's 28 matrices) for graphlets on 2 to 4 nodes.
//
// Windels, Malod-Dognin, Przulj, "Graphlets correct for the topological information missed by
// random walks" (arXiv:2405.14194). Orbits follow Przulj's numbering (ORCA's 0..14).
//
// The graph is a simple undirected graph in CSR form (both directions stored, sorted column
// indices, no self-loops, no duplicates). Rows are produced one at a time from per-pair counts
// (common neighbours, degree and triangle sums over common neighbours, edges among common
// neighbours, and 3-walks), so memory stays O(m + nnz of the requested output).
// This file knows nothing of Python.
#pragma once

#include <cstdint>
#include <vector>

namespace graphkit::graphlets {

// Output keys in this order (hop, orbit_i, orbit_j); 28 in all.
constexpr int kNumKeys = 28;
constexpr int kKeyTable[kNumKeys][3] = {
    {1, 0, 0},   {1, 1, 2},  {1, 2, 1},   {1, 3, 3},   {1, 4, 5},   {1, 5, 4},   {1, 5, 5},
    {1, 6, 7},   {1, 7, 6},  {1, 8, 8},   {1, 9, 11},  {1, 11, 9},  {1, 10, 10}, {1, 10, 11},
    {1, 11, 10}, {1, 12, 13}, {1, 13, 12}, {1, 13, 13}, {1, 14, 14}, {2, 1, 1},  {2, 4, 5},
    {2, 5, 4},   {2, 6, 6},  {2, 8, 8},   {2, 9, 10},  {2, 10, 9},  {2, 12, 12}, {3, 4, 4}};

// Rows [r0, r1) of one output matrix, in CSR form (indptr has r1 - r0 + 1 entries).
struct SparseRows {
  std::vector<int64_t> indptr;
  std::vector<int32_t> indices;
  std::vector<int32_t> data;
};

class OrbitCounter {
 public:
  // indptr has n + 1 entries; indices has indptr[n] entries. The arrays are copied.
  OrbitCounter(int64_t n, const int64_t* indptr, const int32_t* indices);

  int64_t num_nodes() const { return n_; }
  int64_t num_edges() const { return static_cast<int64_t>(indices_.size()) / 2; }

  // Fills out[k] (k < kNumKeys, bit k of mask set) with rows [r0, r1) of matrix k.
  // hop3_mode: 0 = choose, 1 = sparse 3-walks per row, 2 = dense row blocks.
  void count_rows(int64_t r0, int64_t r1, uint32_t mask, int hop3_mode,
                  std::vector<SparseRows>& out);

  // Node graphlet degree vectors: out is n x 15 (row-major), ORCA's orbit numbering.
  void gdv(int64_t* out);

  // Edge graphlet degree vectors for the edges u < v in CSR order: edges is m x 2,
  // out is m x 12 (gradco's / ORCA's 12 edge orbits of 2- to 4-node graphlets).
  void edge_gdv(int32_t* edges, int64_t* out);

 private:
  struct EdgeCounts {  // the 19 hop-1 values of one ordered edge (u, v), indexed by key
    int64_t v[19];
  };

  void row_pass(int64_t u);
  void reset_row();
  void edge_counts(int64_t u, int64_t q, EdgeCounts& e) const;
  // The 19 hop-1 values of edge (u, v) from its per-pair sums (see graphlets.cpp).
  void edge_values(int64_t u, int64_t v, int64_t c, int64_t tt, int64_t dt, int64_t ctu,
                   int64_t ctv, int64_t a3, EdgeCounts& e) const;
  // Hop-1 values only (for GDVs): each edge's K4 count is found once, from its lower end.
  void edge_pass(int64_t u, std::vector<int64_t>& k4, const std::vector<int64_t>& rev,
                 std::vector<EdgeCounts>& rows);
  int64_t pair_q(int64_t v) const;  // CTu + CTv - 2 TT for a pair scanned in the row pass

  int64_t n_;
  std::vector<int64_t> indptr_;
  std::vector<int32_t> indices_;
  std::vector<int64_t> deg_, tri_node_, deg_sum_;
  std::vector<int64_t> upper_;   // first position in row x with column > x
  std::vector<int32_t> tri_;     // triangles on the edge at each CSR position
  std::vector<int64_t> cn_ptr_;  // common neighbours of the edge at position q (col > row)
  std::vector<int32_t> cn_;

  // Per-row scratch (dense, size n) and the list of touched columns.
  std::vector<int64_t> ac_, ad_, acu_, acv_, att_;
  std::vector<int64_t> stamp_;
  std::vector<int32_t> touched_;
  int64_t row_ = -1;
};

}  // namespace graphkit::graphlets
