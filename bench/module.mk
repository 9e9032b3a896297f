# bench/ — benchmarks are scripts over the built binaries (bench/run).
