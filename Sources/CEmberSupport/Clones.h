// Loops compiled for the CPU they run on: AVX-512, AVX2 or baseline x86-64, picked at load time
// (the rest of the build targets baseline x86-64: SSE2). Shared by the C files of this module.
#ifndef EMBER_CLONES_H
#define EMBER_CLONES_H
#if defined(__x86_64__) && defined(__linux__)
#define EMBER_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define EMBER_CLONES
#endif
#endif
