#ifndef CEMBER_PRODUCTS_H
#define CEMBER_PRODUCTS_H

/// Ember's matrix-product engine (Products.c): oneDNN's matmul primitive, whose JIT picks its
/// kernels from the CPU's feature flags (AMX, AVX-512, AVX2, SSE4.1), so a CPU newer than any
/// table still gets its best instructions. Primitives are made once per shape and cached per thread.

/// 1 when oneDNN runs on this machine (it always links; this says its engine started).
int ember_products_available(void);
/// The instruction set oneDNN's kernels use here: "avx512_core_amx", "avx512_core_bf16",
/// "avx512_core", "avx2", ... (a static string).
const char *ember_products_isa(void);
/// The best instruction set this CPU offers for products, read from CPUID with oneDNN's names
/// ("avx512_core_amx", "avx512_core_bf16", "avx512_core", "avx2", "sse41", "baseline"), so a
/// library using less than that can be named.
const char *ember_cpu_isa(void);
/// oneDNN's version, "2.6.3".
const char *ember_products_version(void);
/// Threads each product may use (cores ÷ ranks); process-wide (as OpenBLAS's setting), read by
/// every thread before its next product.
void ember_products_set_threads(int threads);
/// As `ember_products_set_threads` unless a count was set: returns 1 when it applied the count.
int ember_products_suggest_threads(int threads);
/// The product threads `ember_products_set_threads` asked for (until then OpenBLAS's count);
/// one inside `ember_parallel`'s body, whose members each multiply on one thread.
int ember_wanted_threads(void);
/// Runs `body(data, member, members)` on each member of an OpenMP team of `threads` (oneDNN's
/// own threads, through libgomp found at run time); on the caller alone without libgomp or
/// inside another team. The team may be smaller than asked: split work by `members`.
void ember_parallel(int threads, void (*body)(void *data, int member, int members), void *data);
/// Row-major `C = alpha·op(A)·op(B) + beta·C`, float32, leading dimensions as BLAS. Returns 0 on
/// success; non-zero when oneDNN cannot run it (the caller falls back to BLAS).
int ember_sgemm(int trans_a, int trans_b, long m, long n, long k, float alpha, const float *a, long lda,
                const float *b, long ldb, float beta, float *c, long ldc);
/// Whether the CPU has bfloat16 units (AVX512_BF16 or AMX), whether or not oneDNN may use them.
int ember_cpu_has_bf16(void);
/// 1 when bfloat16 products run natively: the CPU has the units and oneDNN may use them.
int ember_bf16_available(void);
/// As `ember_sgemm`, with A and B rounded to bfloat16 (nearest, ties to even) and products
/// accumulated in float32 (Bfloat16.c, Products.c); non-zero when the CPU or oneDNN cannot.
int ember_sgemm_bf16(int trans_a, int trans_b, long m, long n, long k, float alpha, const float *a, long lda,
                     const float *b, long ldb, float beta, float *c, long ldc);
/// As `ember_sgemm_bf16`, where either operand may already be rounded to bfloat16 (`a_rounded`,
/// `b_rounded`: its storage holds bfloat16 at leading dimension `lda`/`ldb`), so an operand that
/// several products use is rounded once; needs bfloat16 units (non-zero otherwise).
int ember_gemm_bf16(int trans_a, int trans_b, long m, long n, long k, float alpha, const void *a, int a_rounded, long lda,
                    const void *b, int b_rounded, long ldb, float beta, float *c, long ldc);
/// A weight rounded to bfloat16 and laid out once in the layout oneDNN's kernels want for
/// `C [m, n] = A [m, k] · op(B)` with A's rows `lda` and C's `ldc` apart (B `[k, n]`, or `[n, k]`
/// with `trans_b`, rows `ldb` apart): a recurrent layer's weight serves every step of a sequence
/// without being repacked at each. NULL when oneDNN or the CPU cannot.
typedef struct ember_packed_weight ember_packed_weight;
ember_packed_weight *ember_pack_weight_bf16(int trans_b, long m, long n, long k, long lda, long ldc, const float *b, long ldb);
/// `C = A · B` with a packed B, A float32 (rounded on the way; then `lda` must equal k) or
/// already bfloat16 at the packed product's `lda` (`a_rounded`); 0 on success.
int ember_gemm_packed_bf16(const ember_packed_weight *w, const void *a, int a_rounded, float *c);
void ember_free_packed_weight(ember_packed_weight *w);
/// `rows` rows of `cols` floats, `ld` apart, rounded to bfloat16 into `out` packed (`cols` apart).
void ember_round_bf16(const float *in, long rows, long cols, long ld, unsigned short *out);
/// How many values `ember_round_bf16` has rounded on the calling thread (tests count that a
/// shared operand is rounded once).
long ember_bf16_rounded(void);
/// Timing of the rounding for benchmarks: on (for the calling thread's roundings) or off,
/// nanoseconds spent since the last reset, and by the calling thread ever.
void ember_bf16_set_timing(int on);
/// Whether timing is on, and whether it is on for the calling thread (the one that turned it on):
/// `KernelProfile` asks these too, so products and rounding time the same thread.
int ember_bf16_timing_on(void);
int ember_bf16_timing_here(void);
long ember_bf16_rounding_ns(void);
long ember_bf16_thread_rounding_ns(void);
void ember_bf16_reset_timing(void);
/// `n` floats rounded to bfloat16 exactly as PyTorch rounds them (nearest, ties to even, NaN to
/// 0x7FC0, subnormals kept: the CPU's `vcvtne2ps2bf16`, which `ember_round_bf16` uses, flushes them to zero).
void ember_round_bf16_exact(const float *in, unsigned short *out, long n);

/// Whether the calling thread's float32 products run in bfloat16 (autocast); setting returns the
/// previous value.
int ember_products_bf16(void);
int ember_products_set_bf16(int on);

/// Products made (primitives created) and run by the calling thread, for tests and benchmarks.
long ember_products_created(void);
/// The name of the kernel oneDNN chose for the last primitive this thread created ("brg:avx512_core").
const char *ember_products_last_kernel(void);

#endif
