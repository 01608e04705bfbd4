"""Record layout of the SM90 forward kernel's tile timeline (libraries built with FWD_SM90_TIMELINE=1).

Why: a tile's cost is a fixed part plus a part per key block, and profiler kernel times cannot separate them or say
which phase of a tile is slow. With the flag, the first consumer thread of every CTA stamps the global timer at
fixed points of each tile and writes one record per tile into the tile-counter buffer after its first int32,
TIMELINE_SLOTS records per CTA (later tiles overwrite the last slot). benchmarks/tile_timeline.py sizes that
buffer and reads the records back. Without the flag the kernel is unchanged (the flag is part of the build key).
"""

TIMELINE_ENV = "FWD_SM90_TIMELINE"  # the build-time switch
TIMELINE_SLOTS = 512
# Per record: the tile, then global-timer stamps (ns, low 32 bits) in the order a full tile passes them.
TILE_FIELDS = ("sequence", "head", "m_block", "split", "splits", "key_blocks")
STAMPS = ("start",       # tile taken from the scheduler's mailbox
          "inputs",      # Q and the first key block's K have landed (full tiles)
          "first_s",     # S = Q K^T of the first key block done
          "first_p",     # that block softmaxed and converted to P
          "loop_end",    # every further key block done (before the last P V)
          "last_pv",     # the last O += P V done
          "staged",      # epilogue: LSE written, O normalised into shared memory
          "barrier",     # epilogue: the warpgroup's staged rows are all written
          "copied",      # epilogue: O rows copied out to global memory
          "end")         # Q stage released, tile done
TIMELINE_FIELDS = len(TILE_FIELDS) + len(STAMPS)


def counter_elements(num_ctas: int) -> int:
    """int32 elements of the tile-counter buffer of a timeline call (the counter itself, then the records)."""
    return 1 + num_ctas * TIMELINE_SLOTS * TIMELINE_FIELDS
