"""Generates one XLA FFI handler per exported kernel from its CuTe DSL C header and its SIGNATURE.

The header tells how each tensor is passed (how many dynamic shapes and strides); SIGNATURE tells which arguments
are inputs, outputs, zeroed scratch, or scalar attributes, in the host function's argument order.
"""

from __future__ import annotations

import re
from pathlib import Path

BUFFER_KINDS = ("in", "out", "inout", "scratch_zero")
SCALAR_TYPES = {"f32": "float", "i32": "int32_t"}


def tensor_layouts(header: str, prefix: str) -> dict[str, tuple[int, int]]:
    """Maps tensor argument name -> (number of dynamic shapes, number of dynamic strides) from an exported header."""
    layouts = {}
    pattern = re.compile(r"typedef struct \{(.*?)\}\s*" + re.escape(prefix) + r"_Tensor_(\w+)_t;", re.S)
    for body, name in pattern.findall(header):
        shapes = re.search(r"dynamic_shapes\[(\d+)\]", body)
        strides = re.search(r"dynamic_strides\[(\d+)\]", body)
        layouts[name] = (int(shapes.group(1)) if shapes else 0, int(strides.group(1)) if strides else 0)
    return layouts


def wrapper_params(header: str, prefix: str) -> list[str]:
    """Parameter names of cute_dsl_<prefix>_wrapper, without the module (first) and the stream (last)."""
    match = re.search(r"cute_dsl_" + re.escape(prefix) + r"_wrapper\((.*?)\)\s*\{", header, re.S)
    if not match:
        raise ValueError(f"no cute_dsl_{prefix}_wrapper in the exported header")
    params = [p.strip().split()[-1].lstrip("*") for p in match.group(1).split(",")]
    return params[1:-1]


def handler_source(name: str, prefix: str, header: str, signature: list) -> str:
    """C++ for the FFI handler symbol `jaxfa4_ffi_<name>`."""
    layouts = tensor_layouts(header, prefix)
    params = wrapper_params(header, prefix)
    names = [arg for arg, _ in signature]
    if params != names:
        raise ValueError(f"{name}: SIGNATURE order {names} differs from the exported wrapper's {params}")

    ins = [(a, k) for a, k in signature if k in ("in", "inout")]
    outs = [(a, k) for a, k in signature if k in ("out", "inout", "scratch_zero")]
    scalars = [(a, k) for a, k in signature if k in SCALAR_TYPES]
    unknown = [(a, k) for a, k in signature if k not in BUFFER_KINDS and k not in SCALAR_TYPES]
    if unknown:
        raise ValueError(f"{name}: unknown argument kinds {unknown}")

    fn_params = ["cudaStream_t stream"]
    fn_params += [f"ffi::AnyBuffer in_{a}" for a, _ in ins]
    fn_params += [f"ffi::Result<ffi::AnyBuffer> out_{a}" for a, _ in outs]
    fn_params += [f"{SCALAR_TYPES[k]} {a}" for a, k in scalars]

    body = []
    call_args = []
    for arg, kind in signature:
        if kind in SCALAR_TYPES:
            call_args.append(arg)
            continue
        if arg not in layouts:
            raise ValueError(f"{name}: tensor argument {arg!r} has no struct in the exported header")
        n_shapes, n_strides = layouts[arg]
        source = f"in_{arg}" if kind == "in" else f"(*out_{arg})"
        body.append(f"  {prefix}_Tensor_{arg}_t t_{arg}{{}};")
        shapes = f"t_{arg}.dynamic_shapes" if n_shapes else "nullptr"
        strides = f"t_{arg}.dynamic_strides" if n_strides else "nullptr"
        body.append(
            f"  if (auto e = jax_fa4::DescribeTensor(kName, \"{arg}\", {source}, &t_{arg}.data, {shapes}, {n_shapes}, "
            f"{strides}, {n_strides}); !e.empty()) return ffi::Error::InvalidArgument(e);")
        if kind == "scratch_zero":
            body.append(f"  if (auto e = jax_fa4::FillAsync(kName, \"{arg}\", {source}, 0, stream); !e.empty()) "
                        f"return ffi::Error::Internal(e);")
        if kind == "out":
            body.append(f"  if (jax_fa4::PoisonOutputs()) {{ if (auto e = jax_fa4::FillAsync(kName, \"{arg}\", "
                        f"{source}, 0xFF, stream); !e.empty()) return ffi::Error::Internal(e); }}")
        call_args.append(f"&t_{arg}")

    binding = "ffi::Ffi::Bind().Ctx<ffi::PlatformStream<cudaStream_t>>()"
    binding += "".join(".Arg<ffi::AnyBuffer>()" for _ in ins)
    binding += "".join(".Ret<ffi::AnyBuffer>()" for _ in outs)
    binding += "".join(f'.Attr<{SCALAR_TYPES[k]}>("{a}")' for a, k in scalars)

    return f"""
// ---- {name}
#include "{name}.h"
namespace {{
jax_fa4::KernelModule g_{name}{{"{name}", &_mlir_{prefix}_cuda_init, &_mlir_{prefix}_cuda_load_to_device}};

ffi::Error Run_{name}({", ".join(fn_params)}) {{
  static constexpr const char *kName = "{name}";
  if (auto e = jax_fa4::EnsureLoaded(g_{name}); !e.empty()) return ffi::Error::Internal(e);
{chr(10).join(body)}
  {prefix}_Kernel_Module_t module{{g_{name}.library}};
  int32_t status = cute_dsl_{prefix}_wrapper(&module, {", ".join(call_args + ["stream"])});
  if (auto e = jax_fa4::LaunchStatus(kName, status); !e.empty()) return ffi::Error::Internal(e);
  return ffi::Error::Success();
}}
}}  // namespace

extern "C" JAX_FA4_EXPORT XLA_FFI_Error *jaxfa4_ffi_{name}(XLA_FFI_CallFrame *);
XLA_FFI_DEFINE_HANDLER_SYMBOL(jaxfa4_ffi_{name}, Run_{name}, {binding}, {{ffi::Traits::kCmdBufferCompatible}});
"""


def write_handlers(jobs_with_signatures, out_path: Path) -> None:
    """Writes the generated translation unit holding every handler."""
    parts = ['// Generated by jax_fa4.build.shim_codegen. Do not edit.',
             '#include "handler_support.h"', "namespace ffi = xla::ffi;"]
    for name, prefix, header_path, signature in jobs_with_signatures:
        parts.append(handler_source(name, prefix, Path(header_path).read_text(), signature))
    out_path.write_text("\n".join(parts) + "\n")
