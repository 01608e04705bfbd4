"""benchmarks.tile_timeline's reading of the forward kernel's per-tile records (synthetic buffers, CPU)."""

import numpy as np
import pytest

from benchmarks import tile_timeline
from jax_fa4.kernels.common_timeline import STAMPS, TILE_FIELDS, TIMELINE_FIELDS, TIMELINE_SLOTS, counter_elements


def _buffer(tiles, num_ctas, t0=(1 << 32) - 5_000):
    """A tile-counter buffer holding `tiles`: (cta, slot, fields dict, {stamp: ns after t0}); stamps wrap 2**32."""
    buf = np.zeros(counter_elements(num_ctas), np.int64)
    for cta, slot, fields, stamps in tiles:
        e = 1 + (cta * TIMELINE_SLOTS + slot) * TIMELINE_FIELDS
        buf[e:e + len(TILE_FIELDS)] = [fields.get(f, 0) for f in TILE_FIELDS]
        for i, name in enumerate(STAMPS):
            buf[e + len(TILE_FIELDS) + i] = (t0 + stamps[name]) % (1 << 32)
    return np.where(buf >= 1 << 31, buf - (1 << 32), buf).astype(np.int32)  # as the int32 device buffer


def _tile(start_ns, blocks, fixed_ns=3000, per_block_ns=1500):
    """Stamps of a full tile whose time is fixed + per_block * blocks, split over the phases."""
    end = start_ns + fixed_ns + per_block_ns * blocks
    marks = np.linspace(start_ns, end, len(STAMPS)).round().astype(int)
    return dict(zip(STAMPS, marks))


def test_records_unwrap_stamps_and_skip_empty_slots():
    tiles = [(0, 0, {"sequence": 3, "key_blocks": 2}, _tile(0, 2)),
             (1, 0, {"sequence": 1, "key_blocks": 1, "head": 7}, _tile(1_000, 1)),
             (1, 1, {"sequence": 1, "key_blocks": 4}, _tile(6_000, 4))]
    rec = tile_timeline.records(_buffer(tiles, 2), 2)
    assert list(rec["cta"]) == [0, 1, 1]
    assert list(rec["sequence"]) == [3, 1, 1] and list(rec["head"]) == [0, 7, 0]
    # the stamps straddle 2**32 (t0 is 5 us before the wrap): unwrapped, they are us since the first start
    np.testing.assert_allclose(rec["start"], [0.0, 1.0, 6.0])
    np.testing.assert_allclose(rec["end"] - rec["start"], [6.0, 4.5, 9.0])


def test_summary_recovers_the_per_tile_and_per_block_costs():
    rng = np.random.default_rng(0)
    tiles, clock = [], [0, 0, 0]
    for cta in range(3):
        for slot in range(20):
            blocks = int(rng.integers(1, 17))
            stamps = _tile(clock[cta] + 200, blocks, fixed_ns=2900, per_block_ns=1550)
            tiles.append((cta, slot, {"key_blocks": blocks}, stamps))
            clock[cta] = stamps["end"]
    rec = tile_timeline.records(_buffer(tiles, 3), 3)
    s = tile_timeline.summarize(rec, 3)
    assert s["tiles"] == 60
    assert s["fixed_us"] == pytest.approx(2.9, abs=0.01) and s["per_block_us"] == pytest.approx(1.55, abs=0.001)
    assert s["gaps_us"] == pytest.approx(19 * 0.2, abs=0.01)  # 200 ns before each tile but the first
    assert s["span_us"] == pytest.approx((max(clock) - 200) / 1e3, abs=0.01)  # from the first tile's start
    assert s["tail_idle_us"] == pytest.approx(np.mean([max(clock) - c for c in clock]) / 1e3, abs=0.01)
    assert 1 in s["phases"]  # (seed 0 draws one-block tiles)
    assert s["phases"][1]["start->inputs"] == pytest.approx((2900 + 1550) / (len(STAMPS) - 1) / 1e3, abs=0.01)
    assert "tile = 2.90 + 1.550 * blocks us" in tile_timeline.report("x", s)


def test_tiles_that_skip_phases_are_left_out_of_the_phase_table():
    stamps = {name: 0 for name in STAMPS}  # a half tile: every stamp equals its start
    stamps["end"] = 4_000
    rec = tile_timeline.records(_buffer([(0, 0, {"key_blocks": 1}, stamps)], 1), 1)
    assert tile_timeline.summarize(rec, 1)["phases"] == {}


def test_by_kind_splits_decode_tiles_from_the_others():
    # CTA 0 streams two decode tiles (sequence 1: one query) back to back; CTA 1 computes a prefill tile
    # (sequence 0) for the first half of the span and then a decode tile.
    tiles = [(0, 0, {"sequence": 1, "key_blocks": 10}, _tile(0, 10, fixed_ns=0, per_block_ns=1000)),
             (0, 1, {"sequence": 2, "key_blocks": 10}, _tile(10_000, 10, fixed_ns=0, per_block_ns=1000)),
             (1, 0, {"sequence": 0, "key_blocks": 5}, _tile(0, 5, fixed_ns=0, per_block_ns=2000)),
             (1, 1, {"sequence": 1, "key_blocks": 5}, _tile(10_000, 5, fixed_ns=0, per_block_ns=2000))]
    rec = tile_timeline.records(_buffer(tiles, 2), 2)
    kinds = tile_timeline.by_kind(rec, seqlens_q=[4096, 1, 1], bins=2)
    assert kinds["decode"]["tiles"] == 3 and kinds["other"]["tiles"] == 1
    assert kinds["decode"]["blocks"] == 25 and kinds["other"]["blocks"] == 5
    assert kinds["decode"]["cta_us"] == pytest.approx(30.0) and kinds["other"]["cta_us"] == pytest.approx(10.0)
    assert kinds["decode"]["us_per_block"] == pytest.approx(30.0 / 25)
    # first half: one CTA on decodes, one on the prefill; second half: both on decodes
    assert kinds["decode"]["busy_ctas"] == pytest.approx([1.0, 2.0])
    assert kinds["other"]["busy_ctas"] == pytest.approx([1.0, 0.0])
    assert "decode: 3 tiles" in tile_timeline.report_kinds(kinds)
    assert tile_timeline.by_kind(rec, seqlens_q=[1, 1, 1]) is None  # one kind only: nothing to compare
