"""Instruction counts of the loops of a SASS listing that issue wgmma (HGMMA), and of chosen address ranges.

Usage: python sass_loop.py FILE.sass [LO:HI ...]   (hex addresses, HI exclusive)
Prints every loop (a backward branch) holding HGMMA with its size and opcode histogram; with ranges, the total and
histogram of the instructions in them (to count one path through a loop whose body branches).
"""
import collections
import re
import sys


def parse(path):
    instructions, labels, pending = [], {}, []
    for line in open(path):
        label = re.match(r"^\s*(\.L_x_\d+):", line)
        if label:
            pending.append(label.group(1))
            continue
        m = re.match(r"\s*/\*([0-9a-f]{4,})\*/\s+(.*?);", line)
        if m:
            address = int(m.group(1), 16)
            labels.update((p, address) for p in pending)
            pending = []
            instructions.append((address, m.group(2).strip()))
    return instructions, labels


def opcode(text):
    return re.sub(r"^@!?U?P\w+\s+", "", text).split()[0].split(".")[0]


def histogram(instructions):
    return dict(collections.Counter(opcode(t) for _, t in instructions).most_common(24))


def main(path, ranges):
    instructions, labels = parse(path)
    for address, text in instructions:
        target = re.search(r"(\.L_x_\d+)", text) if "BRA" in text else None
        if target and labels.get(target.group(1), address) < address:
            body = [x for x in instructions if labels[target.group(1)] <= x[0] <= address]
            if any("HGMMA" in t for _, t in body):
                print(f"loop {labels[target.group(1)]:#x}-{address:#x}: {len(body)} instructions", histogram(body))
    if ranges:
        picked = [x for lo, hi in ranges for x in instructions if lo <= x[0] < hi]
        print(f"ranges: {len(picked)} instructions", histogram(picked))


if __name__ == "__main__":
    main(sys.argv[1], [tuple(int(x, 16) for x in r.split(":")) for r in sys.argv[2:]])
