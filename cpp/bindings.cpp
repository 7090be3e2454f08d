// Python bindings of graphkit's C++ core (module graphkit._cpp). The only file that knows Python.
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>

#include <cstdint>
#include <cstdlib>
#include <utility>
#include <vector>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "graphlets.hpp"

namespace nb = nanobind;
using graphkit::graphlets::OrbitCounter;
using graphkit::graphlets::SparseRows;

namespace {

template <typename T>
using Array1D = nb::ndarray<T, nb::ndim<1>, nb::c_contig, nb::device::cpu>;

// Hands a std::vector to NumPy without copying; the capsule frees it.
template <typename T>
nb::object to_numpy(std::vector<T>&& values) {
  values.shrink_to_fit();  // hand NumPy exactly the memory it reports
  auto* owned = new std::vector<T>(std::move(values));
  nb::capsule owner(owned, [](void* p) noexcept { delete static_cast<std::vector<T>*>(p); });
  return nb::cast(nb::ndarray<nb::numpy, T, nb::ndim<1>>(owned->data(), {owned->size()}, owner));
}

template <typename T>
nb::ndarray<nb::numpy, T, nb::ndim<2>> new_matrix(size_t rows, size_t cols) {
  auto* owned = new std::vector<T>(rows * cols, 0);
  nb::capsule owner(owned, [](void* p) noexcept { delete static_cast<std::vector<T>*>(p); });
  return nb::ndarray<nb::numpy, T, nb::ndim<2>>(owned->data(), {rows, cols}, owner);
}

OrbitCounter* make_counter(Array1D<const int64_t> indptr, Array1D<const int32_t> indices) {
  if (indptr.shape(0) < 1) throw nb::value_error("indptr must have at least one entry");
  const int64_t n = static_cast<int64_t>(indptr.shape(0)) - 1;
  if (indptr.data()[n] != static_cast<int64_t>(indices.shape(0))) {
    throw nb::value_error("indptr[-1] must equal len(indices)");
  }
  nb::gil_scoped_release release;
  return new OrbitCounter(n, indptr.data(), indices.data());
}

nb::list count_rows(OrbitCounter& counter, int64_t r0, int64_t r1, uint32_t mask,
                    int hop3_mode) {
  std::vector<SparseRows> out;
  {
    nb::gil_scoped_release release;
    counter.count_rows(r0, r1, mask, hop3_mode, out);
  }
  nb::list result;
  for (int k = 0; k < graphkit::graphlets::kNumKeys; ++k) {
    if (!(mask >> k & 1u)) {
      result.append(nb::none());
      continue;
    }
    result.append(nb::make_tuple(to_numpy(std::move(out[k].indptr)),
                                 to_numpy(std::move(out[k].indices)),
                                 to_numpy(std::move(out[k].data))));
  }
  return result;
}

nb::object gdv(OrbitCounter& counter) {
  auto out = new_matrix<int64_t>(static_cast<size_t>(counter.num_nodes()), 15);
  {
    nb::gil_scoped_release release;
    counter.gdv(out.data());
  }
  return nb::cast(out);
}

nb::tuple edge_gdv(OrbitCounter& counter) {
  const auto m = static_cast<size_t>(counter.num_edges());
  auto edges = new_matrix<int32_t>(m, 2);
  auto out = new_matrix<int64_t>(m, 12);
  {
    nb::gil_scoped_release release;
    counter.edge_gdv(edges.data(), out.data());
  }
  return nb::make_tuple(nb::cast(edges), nb::cast(out));
}

nb::list key_table() {
  nb::list keys;
  for (const auto& k : graphkit::graphlets::kKeyTable) keys.append(nb::make_tuple(k[0], k[1], k[2]));
  return keys;
}

}  // namespace

NB_MODULE(_cpp, m) {
#if defined(__GLIBC__)
  // Counting in row blocks allocates and frees many multi-megabyte buffers. glibc's dynamic
  // mmap threshold would move them onto the heap, whose freed holes stay resident; a fixed
  // threshold returns them to the system at once (unless the user chose one already).
  if (std::getenv("MALLOC_MMAP_THRESHOLD_") == nullptr) mallopt(M_MMAP_THRESHOLD, 1 << 20);
#endif
  m.doc() = "graphkit's compiled kernels (C++17, no torch dependency)";
  m.def("graphlet_keys", &key_table, "The 28 (hop, orbit_i, orbit_j) keys in output order.");
  nb::class_<OrbitCounter>(m, "OrbitCounter",
                           "Graphlet-orbit adjacency counter over a simple undirected CSR graph.")
      .def("__init__",
           [](OrbitCounter* self, Array1D<const int64_t> indptr, Array1D<const int32_t> indices) {
             OrbitCounter* made = make_counter(indptr, indices);
             new (self) OrbitCounter(std::move(*made));
             delete made;
           },
           nb::arg("indptr"), nb::arg("indices"))
      .def_prop_ro("num_nodes", &OrbitCounter::num_nodes)
      .def_prop_ro("num_edges", &OrbitCounter::num_edges)
      .def("count_rows", &count_rows, nb::arg("r0"), nb::arg("r1"), nb::arg("mask"),
           nb::arg("hop3_mode") = 0,
           "Rows [r0, r1) of the matrices selected by the 28-bit mask: a list of 28 entries, "
           "None or (indptr, indices, data).")
      .def("gdv", &gdv, "Node graphlet degree vectors, n x 15 int64.")
      .def("edge_gdv", &edge_gdv, "(edges m x 2 int32 with u < v, counts m x 12 int64).");
}
