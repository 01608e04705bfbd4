#include "handler_support.h"

#include <limits>

namespace jax_fa4 {

std::string DescribeTensor(const char *kernel, const char *arg, const xla::ffi::AnyBuffer &buffer, void **data,
                           int32_t *shapes, int n_shapes, int64_t *strides, int n_strides) {
  auto dims = buffer.dimensions();
  const int rank = static_cast<int>(dims.size());
  auto fail = [&](const std::string &why) {
    return std::string("jax_fa4 kernel ") + kernel + ": argument " + arg + " " + why;
  };
  if (n_shapes != 0 && n_shapes != rank) {
    return fail("has rank " + std::to_string(rank) + " but the kernel was built for rank " +
                std::to_string(n_shapes));
  }
  if (n_strides != 0 && n_strides != rank - 1) {
    return fail("is described with " + std::to_string(n_strides) + " dynamic strides; expected " +
                std::to_string(rank - 1));
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

std::string ZeroAsync(const char *kernel, const char *arg, const xla::ffi::AnyBuffer &buffer, cudaStream_t stream) {
  if (buffer.size_bytes() == 0) return "";
  cudaError_t err = cudaMemsetAsync(buffer.untyped_data(), 0, buffer.size_bytes(), stream);
  if (err != cudaSuccess) return CudaFailure(kernel, (std::string("zeroing ") + arg).c_str(), err);
  return "";
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
