#include "handler_support.h"

#include <cstdlib>
#include <limits>

namespace jax_fa4 {

std::string DescribeTensor(const char *kernel, const char *arg, const xla::ffi::AnyBuffer &buffer, void **data,
                           int32_t *shapes, int n_shapes, int64_t *strides, int n_strides) {
  auto dims = buffer.dimensions();
  const int rank = static_cast<int>(dims.size());
  auto fail = [&](const std::string &why) {
    return std::string("jax_fa4 kernel ") + kernel + ": argument " + arg + " " + why;
  };
  // Kernels may fix trailing extents at compile time (e.g. the head dimension): the dynamic shapes are then the
  // leading modes, and so are the dynamic strides of the row-major layout. The caller picks the variant whose
  // static extents match the buffer.
  if (n_shapes > rank) {
    return fail("has rank " + std::to_string(rank) + " but the kernel was built for " + std::to_string(n_shapes) +
                " dynamic extents");
  }
  if (n_strides > rank - 1 && n_strides != 0) {
    return fail("is described with " + std::to_string(n_strides) + " dynamic strides; at most " +
                std::to_string(rank - 1) + " expected for rank " + std::to_string(rank));
  }
  int64_t stride = 1;
  int64_t row_major[16];
  if (rank > 16) return fail("has rank above 16");
  for (int i = rank - 1; i >= 0; --i) {
    row_major[i] = stride;
    stride *= dims[i];
  }
  for (int i = 0; i < n_shapes; ++i) {
    if (dims[i] > std::numeric_limits<int32_t>::max()) return fail("has a dimension above 2^31-1");
    shapes[i] = static_cast<int32_t>(dims[i]);
  }
  for (int i = 0; i < n_strides; ++i) strides[i] = row_major[i];
  *data = buffer.untyped_data();
  return "";
}

std::string FillAsync(const char *kernel, const char *arg, const xla::ffi::AnyBuffer &buffer, int value,
                      cudaStream_t stream) {
  if (buffer.size_bytes() == 0) return "";
  cudaError_t err = cudaMemsetAsync(buffer.untyped_data(), value, buffer.size_bytes(), stream);
  if (err != cudaSuccess) return CudaFailure(kernel, (std::string("filling ") + arg).c_str(), err);
  return "";
}

bool PoisonOutputs() {
  const char *flag = std::getenv("JAX_FA4_POISON_OUTPUTS");
  return flag != nullptr && flag[0] == '1';
}

std::string LaunchStatus(const char *kernel, int32_t status) {
  cudaError_t err = cudaGetLastError();
  if (status != 0) {
    return std::string("jax_fa4 kernel ") + kernel + ": launch returned status " + std::to_string(status) +
           (err != cudaSuccess ? std::string(" (") + cudaGetErrorName(err) + ": " + cudaGetErrorString(err) + ")"
                               : std::string());
  }
  if (err != cudaSuccess) return CudaFailure(kernel, "launch", err);
  return "";
}

}  // namespace jax_fa4
