"""Speed, accuracy and memory benchmarks (docs/performance.md), each a module to run."""
