// What every generated FFI handler needs: turning XLA buffers into CuTe DSL tensor descriptors, zeroing scratch
// on XLA's stream, and turning launch failures into errors that name the kernel.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "module_cache.h"
#include "xla/ffi/api/ffi.h"

#define JAX_FA4_EXPORT __attribute__((visibility("default")))

namespace jax_fa4 {

// Fills a CuTe DSL tensor descriptor from an XLA buffer. Buffers are dense row-major, so the dynamic shapes are the
// buffer's dimensions and the dynamic strides are the row-major strides of every mode but the innermost.
std::string DescribeTensor(const char *kernel, const char *arg, const xla::ffi::AnyBuffer &buffer, void **data,
                           int32_t *shapes, int n_shapes, int64_t *strides, int n_strides);

// Fills a buffer with the byte `value` on `stream`: 0 zeroes scratch (the per-call tile counter of the persistent
// scheduler); 0xFF poisons outputs (NaN in every float type, -1 in integers).
std::string FillAsync(const char *kernel, const char *arg, const xla::ffi::AnyBuffer &buffer, int value,
                      cudaStream_t stream);

// True when JAX_FA4_POISON_OUTPUTS=1: handlers then fill every output with 0xFF bytes before the launch, so tests
// can see any element a kernel failed to write (XLA hands outputs over uninitialised). Read on every call.
bool PoisonOutputs();

// Checks the status the exported launcher returned and the launch's own error.
std::string LaunchStatus(const char *kernel, int32_t status);

}  // namespace jax_fa4
