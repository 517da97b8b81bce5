#!/usr/bin/env python3
"""Reads a folded stack file (inferno-collapse-perf's output) and prints where the time went.

    scripts/flame_summary.py target/profile/websocket.folded [REGEX ...]

First the leaf of every sample by crate (user space) or by system call (kernel), i.e. self
time; then, for every REGEX given, the share of samples with a frame matching it anywhere in
the stack (inclusive time). The flame graph shows the same data; this gives the numbers that
docs/results.md quotes. scripts/profile-fanout.sh writes the folded files.
"""
import collections
import re
import sys

KERNEL_ENTRY = ("entry_SYSCALL_64_after_hwframe", "asm_", "ret_from_fork")
SYSCALLS = [("send/write", ("sendto", "sys_write", "sys_writev")),
            ("recv/read", ("recvfrom", "sys_read")),
            ("epoll", ("epoll",)),
            ("page fault", ("page_fault",)),
            ("accept", ("accept",))]


def leaf_class(frames):
    for i, frame in enumerate(frames):
        if frame.startswith(KERNEL_ENTRY):
            kernel = frames[i:]
            for name, marks in SYSCALLS:
                if any(m in f for f in kernel for m in marks):
                    return "kernel: " + name
            return "kernel: other"
    leaf = frames[-1].lstrip("<&")
    m = re.match(r"([a-z_0-9]+)::", leaf)
    if m:
        return m.group(1)
    if re.match(r"(__libc_)?(malloc|free|cfree|_int_|realloc|sysmalloc|unlink_chunk|tcache)", leaf):
        return "glibc malloc"
    if re.search(r"mem(move|cpy|set|cmp)", leaf):
        return "glibc mem*"
    return "other: " + leaf[:40]


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    samples = []
    for line in open(sys.argv[1]):
        stack, count = line.rstrip("\n").rsplit(" ", 1)
        samples.append((stack, int(count)))
    total = sum(n for _, n in samples) or 1
    classes = collections.Counter()
    for stack, n in samples:
        classes[leaf_class(stack.split(";"))] += n
    print("%s: %d distinct stacks" % (sys.argv[1], len(samples)))
    print("self time, by the crate of the leaf frame (kernel: by system call):")
    for name, n in classes.most_common(20):
        print("  %5.1f%%  %s" % (100.0 * n / total, name))
    if len(sys.argv) > 2:
        print("inclusive time (a frame matching anywhere in the stack):")
        for pattern in sys.argv[2:]:
            n = sum(c for stack, c in samples if re.search(pattern, stack))
            print("  %5.1f%%  %s" % (100.0 * n / total, pattern))


if __name__ == "__main__":
    main()
