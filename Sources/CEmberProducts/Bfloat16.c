// bfloat16 products: float32 operands rounded to bfloat16 (nearest, ties to even) into
// per-thread scratch, multiplied by oneDNN's bf16 kernels (AMX tiles where the CPU has them,
// else AVX512_BF16's dot products) with float32 accumulation and a float32 result.
#include "CEmberProducts.h"
#include "Engine.h"
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

static int bf16_units = -1;  // unknown yet; computed once (the same answer for every thread)

// The CPU's units count only where oneDNN may use them: `DNNL_MAX_CPU_ISA` (or a library that
// did not start) leaves oneDNN without bf16 kernels, and Ember then emulates rather than asking
// it for products it cannot build.
static int has_bf16_units(const char *isa) { return strcmp(isa, "avx512_core_bf16") == 0 || strcmp(isa, "avx512_core_amx") == 0; }
int ember_cpu_has_bf16(void) { return has_bf16_units(ember_cpu_isa()); }
int ember_bf16_available(void) {
    if (bf16_units < 0) {
        bf16_units = ember_cpu_has_bf16() && ember_products_available() && has_bf16_units(ember_products_isa());
    }
    return bf16_units;
}

// Nearest, ties to even; NaN stays NaN. Branch-free, so loops over it vectorise.
static inline uint16_t round_bf16(float x) {
    uint32_t b;
    memcpy(&b, &x, 4);
    uint16_t r = (uint16_t)((b + 0x7fffu + ((b >> 16) & 1u)) >> 16);
    return (b & 0x7fffffffu) > 0x7f800000u ? 0x7fc0 : r;
}

#if defined(__x86_64__)
// 32 floats a step through the CPU's own round-to-nearest-even conversion; the last few under
// a mask (a scalar tail was most of the cost for the short rows of attention's products).
__attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16"))) static void round_row_bf16(const float *in, uint16_t *out, long n) {
    long i = 0;
    for (; i + 32 <= n; i += 32) {
        __m512bh v = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(in + i + 16), _mm512_loadu_ps(in + i));
        _mm512_storeu_si512((void *)(out + i), (__m512i)v);
    }
    for (; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        __m256bh v = _mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(m, in + i));
        _mm256_mask_storeu_epi16((void *)(out + i), m, (__m256i)v);
    }
}
#endif

void ember_round_bf16_exact(const float *in, unsigned short *out, long n) {
    for (long i = 0; i < n; i++) out[i] = round_bf16(in[i]);  // subnormals round as any other value
}

static __thread long rounded_values;
long ember_bf16_rounded(void) { return rounded_values; }

// Time spent rounding, while benchmarks ask (`trainer bench` reports it apart from the products),
// on the thread that asked: a rank's step runs there, and threads sharing its work would count
// their part of the same wall time again.
static atomic_int timing;
static pthread_t timed_thread;
static atomic_long rounding_total_ns;
static __thread long rounding_thread_ns;
void ember_bf16_set_timing(int on) {
    if (on) timed_thread = pthread_self();
    atomic_store_explicit(&timing, on, memory_order_release);
}
int ember_bf16_timing_here(void) {
    return atomic_load_explicit(&timing, memory_order_acquire) && pthread_equal(pthread_self(), timed_thread);
}
int ember_bf16_timing_on(void) { return atomic_load_explicit(&timing, memory_order_acquire); }
long ember_bf16_rounding_ns(void) { return atomic_load_explicit(&rounding_total_ns, memory_order_relaxed); }
long ember_bf16_thread_rounding_ns(void) { return rounding_thread_ns; }
void ember_bf16_reset_timing(void) { atomic_store_explicit(&rounding_total_ns, 0, memory_order_relaxed); }
static long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000L + t.tv_nsec;
}
static void round_rows(const float *in, long rows, long cols, long ld, unsigned short *out);

void ember_round_bf16(const float *in, long rows, long cols, long ld, unsigned short *out) {
    rounded_values += rows * cols;
    if (!ember_bf16_timing_here()) return round_rows(in, rows, cols, ld, out);
    long start = now_ns();
    round_rows(in, rows, cols, ld, out);
    long spent = now_ns() - start;
    rounding_thread_ns += spent;
    atomic_fetch_add_explicit(&rounding_total_ns, spent, memory_order_relaxed);
}

static void round_serially(const float *in, long rows, long cols, long ld, unsigned short *out) {
    for (long r = 0; r < rows; r++) {
#if defined(__x86_64__)
        if (ember_bf16_available()) { round_row_bf16(in + r * ld, out + r * cols, cols); continue; }
#endif
        for (long c = 0; c < cols; c++) out[r * cols + c] = round_bf16(in[r * ld + c]);
    }
}

// From 2^18 values (about 12 µs of one core's work) the product threads share the rounding;
// each value rounds alone, so the bits do not depend on the split. Rounded by the caller alone,
// gpt's operands took 7.7% of its step on two threads (6.1% shared: 1.04× the tokens/s); from
// 2^17, mlp's 200k-value weight joined in and its step grew in the minutes this host was slow
// to wake the other core.
enum { SHARED_ROUNDING_FROM = 1 << 18 };
typedef struct {
    const float *in;
    long rows, cols, ld;
    unsigned short *out;
} rounding_work;

// A member's share: whole rows, or for one long row a run of whole 32-value blocks.
static void round_share(void *data, int member, int members) {
    const rounding_work *w = data;
    long units = w->rows > 1 ? w->rows : (w->cols + 31) / 32, per = (units + members - 1) / members;
    long from = member * per, to = from + per < units ? from + per : units;
    if (from >= to) return;
    if (w->rows > 1) return round_serially(w->in + from * w->ld, to - from, w->cols, w->ld, w->out + from * w->cols);
    long end = to * 32 < w->cols ? to * 32 : w->cols;
    round_serially(w->in + from * 32, 1, end - from * 32, end - from * 32, w->out + from * 32);
}

static void round_rows(const float *in, long rows, long cols, long ld, unsigned short *out) {
    // A contiguous matrix is one long row.
    if (ld == cols && rows > 1) { cols *= rows; rows = 1; }
    int threads = ember_wanted_threads();
    if (threads < 2 || rows * cols < SHARED_ROUNDING_FROM) return round_serially(in, rows, cols, ld, out);
    rounding_work work = {in, rows, cols, ld, out};
    ember_parallel(threads, round_share, &work);
}
