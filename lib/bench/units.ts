/** Sizes and times as the benchmark reports (BENCHMARKS-*.md) print them. */
const KiB = 1024;
const MiB = 1024 * KiB;

/** 8 B, 4 KiB, 64 MiB. */
export const byteLabel = (bytes: number): string => (bytes >= MiB ? `${bytes / MiB} MiB` : bytes >= KiB ? `${bytes / KiB} KiB` : `${bytes} B`);

/** 350 ns, 12.5 µs, 3.20 ms. */
export const timeLabel = (ns: number): string => (ns >= 1e6 ? `${(ns / 1e6).toFixed(2)} ms` : ns >= 1e3 ? `${(ns / 1e3).toFixed(1)} µs` : `${ns.toFixed(0)} ns`);
