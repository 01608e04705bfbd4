"""How kernels describe their buffers to `cute.compile`: the one place that fixes the layout convention.

XLA hands the FFI handlers dense row-major buffers, so every fake tensor is compact row-major (the last mode has
stride 1). CuTe's own default is column-major; building tensors anywhere else invites that mismatch. All extents
are dynamic (`cute.sym_int()`), so one compiled variant serves every shape.
"""

import cutlass.cute as cute
from cutlass.cute.runtime import make_fake_compact_tensor


def row_major(dtype, shape, align=16):
    """A fake compact row-major tensor of `shape` (ints or sym_ints) whose base pointer is `align`-byte aligned."""
    rank = len(shape)
    return make_fake_compact_tensor(dtype, tuple(shape), stride_order=tuple(range(rank - 1, -1, -1)),
                                    assumed_align=align)


def dynamic_dims(count):
    """`count` fresh dynamic extents."""
    return tuple(cute.sym_int() for _ in range(count))
