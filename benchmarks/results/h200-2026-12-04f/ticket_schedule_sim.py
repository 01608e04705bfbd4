"""Session 41 (CPU only): simulated backward ticket schedule, greedy dynamic (each CTA takes the next ticket when
free); cost = visited (query block, head) steps + a per-key-block fixed cost. Makespan vs ideal (work / P)."""
import heapq, sys
import numpy as np
sys.path.insert(0, str(__import__('pathlib').Path(__file__).resolve().parents[3]))
from benchmarks import workloads
P, TK, TQ, HK, QPK = 132, 128, 64, 8, 4
FIX = float(sys.argv[1]) if len(sys.argv) > 1 else 4.0  # fixed cost per key block in steps

def kb_steps(n, sq, sk, causal):
    if not causal:
        return -(-sq // TQ)
    first_q = max(0, n * TK - (sk - sq))  # bottom-right causal: query i sees keys <= i + sk - sq
    m_min = first_q // TQ
    return max(0, -(-sq // TQ) - m_min)

def tickets(lens, causal):
    out = []
    for L in lens:
        nb = -(-L // TK)
        pairs = -(-L // (2 * TK))
        for h in range(HK):
            for p in range(pairs):
                blocks = {nb - 1 - p, p}
                out.append(sum(kb_steps(n, L, L, causal) * QPK + FIX for n in blocks))
    return out

def makespan(costs):
    heap = [0.0] * P
    for c in costs:
        t = heapq.heappop(heap); heapq.heappush(heap, t + c)
    return max(heap)

for wl in workloads.all_workloads():
    if wl.name.startswith(("dense", "packed-train")):
        c = tickets(wl.seqlens_k, wl.causal)
        ideal = sum(c) / P
        for name, order in (("natural", c), ("longest-first", sorted(c, reverse=True))):
            m = makespan(order)
            print(f"{wl.name:22s} {name:14s} tickets {len(c):5d} rounds {len(c)/P:6.2f} makespan/ideal {m/ideal:.4f}")

print("sequence-level longest-first (tickets of a sequence stay adjacent):")
for wl in workloads.all_workloads():
    if wl.name.startswith("packed-train"):
        lens = sorted(wl.seqlens_k, reverse=True)
        c = tickets(lens, wl.causal)
        print(f"{wl.name:22s} seq-sorted makespan/ideal {makespan(c) / (sum(c) / P):.4f}")

print("stream-K tail (tickets t >= T - T mod P split into P equal segments; a segment may span tickets):")


def stream_k_makespan(costs):
    """Greedy over the first T - T mod P tickets, then every CTA takes one of P equal segments of the rest,
    starting when it is free (the tail's work is spread evenly; fixup cost ignored)."""
    regular = len(costs) - len(costs) % P if len(costs) > P else len(costs)
    heap = [0.0] * P
    for c in costs[:regular]:
        t = heapq.heappop(heap); heapq.heappush(heap, t + c)
    tail = sum(costs[regular:]) / P
    return max(heap) + tail if tail else max(heap)


for wl in workloads.all_workloads():
    if wl.name.startswith(("dense", "packed-train")):
        lens = sorted(wl.seqlens_k, reverse=True)
        c = tickets(lens, wl.causal)
        print(f"{wl.name:22s} longest-first + stream-K tail makespan/ideal {stream_k_makespan(c) / (sum(c) / P):.4f}")
