// Lazy, thread-safe loading of ahead-of-time CuTe DSL kernel modules, once per module and once per device.
//
// Each module exported by CuTe DSL's export_to_c brings two entry points: `<prefix>_cuda_init`, which creates a
// context-independent cudaLibrary_t from the embedded cubin, and `<prefix>_cuda_load_to_device`, which prepares
// that library's kernels for one device. XLA may call a handler from one host thread per GPU, so both steps are
// guarded here; the steady state is one atomic load per call.
#pragma once

#include <cuda_runtime.h>

#include <atomic>
#include <mutex>
#include <string>

namespace jax_fa4 {

using ModuleEntry = void (*)(void **);

constexpr int kMaxDevices = 64;

struct KernelModule {
  const char *name;            // stable kernel name, used in error messages
  ModuleEntry init;            // <prefix>_cuda_init
  ModuleEntry load_to_device;  // <prefix>_cuda_load_to_device
  cudaLibrary_t library = nullptr;
  std::mutex mutex;
  std::atomic<bool> initialised{false};
  std::atomic<bool> loaded[kMaxDevices] = {};
};

// Makes `module` usable on the current device. Returns an empty string on success, else a message naming the
// kernel and the CUDA error.
std::string EnsureLoaded(KernelModule &module);

// Formats "jax_fa4 kernel <name>: <what> failed: <cuda error name> (<string>)".
std::string CudaFailure(const char *kernel, const char *what, cudaError_t err);

}  // namespace jax_fa4
