"""Performance engineering: profiling, quantization, compression, acceleration, caching, benchmarking."""
