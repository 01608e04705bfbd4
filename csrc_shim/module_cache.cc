#include "module_cache.h"

namespace jax_fa4 {

std::string CudaFailure(const char *kernel, const char *what, cudaError_t err) {
  return std::string("jax_fa4 kernel ") + kernel + ": " + what + " failed: " + cudaGetErrorName(err) + " (" +
         cudaGetErrorString(err) + ")";
}

std::string EnsureLoaded(KernelModule &module) {
  int device = 0;
  cudaError_t err = cudaGetDevice(&device);
  if (err != cudaSuccess) return CudaFailure(module.name, "cudaGetDevice", err);
  if (device < 0 || device >= kMaxDevices) {
    return std::string("jax_fa4 kernel ") + module.name + ": device ordinal " + std::to_string(device) +
           " is beyond the supported " + std::to_string(kMaxDevices) + " devices";
  }
  if (module.loaded[device].load(std::memory_order_acquire)) return "";

  std::lock_guard<std::mutex> lock(module.mutex);
  if (!module.initialised.load(std::memory_order_relaxed)) {
    cudaLibrary_t *library_ptr = &module.library;
    cudaError_t ret = cudaSuccess;
    struct {
      cudaLibrary_t **library;
      cudaError_t *ret;
    } init_args = {&library_ptr, &ret};
    module.init(reinterpret_cast<void **>(&init_args));
    if (ret != cudaSuccess) return CudaFailure(module.name, "loading the module (cudaLibraryLoadData)", ret);
    module.initialised.store(true, std::memory_order_release);
  }
  if (!module.loaded[device].load(std::memory_order_relaxed)) {
    cudaLibrary_t *library_ptr = &module.library;
    int32_t device_id = device;
    cudaError_t ret = cudaSuccess;
    struct {
      cudaLibrary_t **library;
      int32_t *device_id;
      cudaError_t *ret;
    } load_args = {&library_ptr, &device_id, &ret};
    module.load_to_device(reinterpret_cast<void **>(&load_args));
    if (ret != cudaSuccess) return CudaFailure(module.name, "preparing the module for this device", ret);
    module.loaded[device].store(true, std::memory_order_release);
  }
  return "";
}

}  // namespace jax_fa4
