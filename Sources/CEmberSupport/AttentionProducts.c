#include "CEmberSupport.h"

// One attention head's products, float32, AVX-512: C = op(A)·op(B) for operands of a sequence's
// length and a head's width, skipping the blocks a causal mask makes zero. oneDNN's kernels are
// made for large products: on the gpt preset's heads (64×64×32, rows 3E apart) they ran at 55-77
// GFLOP/s in the training step, an eighth of it; causal attention also wastes half its work on
// weights that are zero. Callers check `ember_attention_product_available` and fall back to
// the general products.
//
// Each output element is one chain of multiply-adds in k order, so its bits do not depend on the
// tiling, the thread or the rank.

#if defined(__x86_64__)
#include <immintrin.h>

int ember_attention_product_available(void) { return __builtin_cpu_supports("avx512f"); }

#define EMBER_AVX512 __attribute__((target("avx512f")))
#define EMBER_TILE static inline __attribute__((always_inline, target("avx512f")))

// Lanes of a 16-column block that fall inside `n` columns.
EMBER_TILE __mmask16 columns_mask(long j, long n) {
    return n - j >= 16 ? (__mmask16)0xFFFF : n <= j ? 0 : (__mmask16)((1u << (n - j)) - 1);
}

// Rows [i, i + ROWS) by columns [j, j + 16·BLOCKS) of C over k in [k0, k1): A's element (row, kk)
// at a[row·a_row + kk·a_k], B row-major (ldb); ROWS·BLOCKS accumulators, at most 16.
#define EMBER_ATTENTION_TILE(ROWS, BLOCKS)                                                                                  \
    EMBER_TILE void tile_##ROWS##x##BLOCKS(long i, long j, long n, long k0, long k1, const float *a, long a_row, long a_k, \
                                           const float *b, long ldb, float *c, long ldc) {                                  \
        __m512 acc[ROWS][BLOCKS];                                                                                           \
        __mmask16 mask[BLOCKS];                                                                                             \
        for (int v = 0; v < BLOCKS; v++) mask[v] = columns_mask(j + 16 * v, n);                                             \
        for (int r = 0; r < ROWS; r++)                                                                                      \
            for (int v = 0; v < BLOCKS; v++) acc[r][v] = _mm512_setzero_ps();                                               \
        for (long kk = k0; kk < k1; kk++) {                                                                                 \
            __m512 x[BLOCKS];                                                                                               \
            for (int v = 0; v < BLOCKS; v++) x[v] = _mm512_maskz_loadu_ps(mask[v], b + kk * ldb + j + 16 * v);             \
            for (int r = 0; r < ROWS; r++) {                                                                                \
                __m512 t = _mm512_set1_ps(a[(i + r) * a_row + kk * a_k]);                                                  \
                for (int v = 0; v < BLOCKS; v++) acc[r][v] = _mm512_fmadd_ps(t, x[v], acc[r][v]);                           \
            }                                                                                                               \
        }                                                                                                                   \
        for (int r = 0; r < ROWS; r++)                                                                                      \
            for (int v = 0; v < BLOCKS; v++) _mm512_mask_storeu_ps(c + (i + r) * ldc + j + 16 * v, mask[v], acc[r][v]);    \
    }
EMBER_ATTENTION_TILE(8, 2)
EMBER_ATTENTION_TILE(1, 2)
#undef EMBER_ATTENTION_TILE

// The k range a tile of rows [i, i + rows) needs, and whether a tile starting at column j is
// needed at all.
static void k_range(int triangle, long i, long rows, long k, long *k0, long *k1) {
    *k0 = triangle == EMBER_TRIANGLE_K_FROM_ROW ? (i < k ? i : k) : 0;
    *k1 = triangle == EMBER_TRIANGLE_K_UP_TO_ROW ? (i + rows < k ? i + rows : k) : k;
}
static int tile_needed(int triangle, long i, long rows, long j) { return triangle != EMBER_TRIANGLE_OUTPUT_LOWER || j < i + rows; }

// A 16×16 block transposed in registers: 64 shuffles where gathers (a sixth of the kernel's
// time on Intel) or scalar copies cost more.
EMBER_TILE void transpose16(const float *src, long lds, float *dst, long ldd) {
    __m512 r[16], t[16];
    for (int i = 0; i < 16; i++) r[i] = _mm512_loadu_ps(src + i * lds);
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    // r[4g + c] then holds, for rows 4g..4g+3, columns c, c + 4, c + 8 and c + 12 (a 128-bit lane each).
    for (int g = 0; g < 16; g += 4) {
        r[g] = _mm512_shuffle_ps(t[g], t[g + 2], 0x44);
        r[g + 1] = _mm512_shuffle_ps(t[g], t[g + 2], 0xEE);
        r[g + 2] = _mm512_shuffle_ps(t[g + 1], t[g + 3], 0x44);
        r[g + 3] = _mm512_shuffle_ps(t[g + 1], t[g + 3], 0xEE);
    }
    for (int c = 0; c < 4; c++) {
        __m512 v0 = _mm512_shuffle_f32x4(r[c], r[4 + c], 0x88), v1 = _mm512_shuffle_f32x4(r[c], r[4 + c], 0xDD);
        __m512 w0 = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0x88), w1 = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0xDD);
        _mm512_storeu_ps(dst + c * ldd, _mm512_shuffle_f32x4(v0, w0, 0x88));
        _mm512_storeu_ps(dst + (c + 4) * ldd, _mm512_shuffle_f32x4(v1, w1, 0x88));
        _mm512_storeu_ps(dst + (c + 8) * ldd, _mm512_shuffle_f32x4(v0, w0, 0xDD));
        _mm512_storeu_ps(dst + (c + 12) * ldd, _mm512_shuffle_f32x4(v1, w1, 0xDD));
    }
}

// Bᵀ of B [n, k] (rows ldb apart) into t [k, n]: whole 16×16 blocks in registers, the edges one by one.
EMBER_TILE void transpose_into(const float *b, long ldb, long n, long k, float *t) {
    long n16 = n - n % 16, k16 = k - k % 16;
    for (long j = 0; j < n16; j += 16)
        for (long kk = 0; kk < k16; kk += 16) transpose16(b + j * ldb + kk, ldb, t + kk * n + j, n);
    for (long j = 0; j < n; j++)
        for (long kk = j < n16 ? k16 : 0; kk < k; kk++) t[kk * n + j] = b[j * ldb + kk];
}

// All of C's tiles; inlined once per layout of A, whose strides are then constants.
EMBER_TILE long tiles(long m, long n, long k, const float *a, long a_row, long a_k, const float *b, long ldb, float *c, long ldc,
                      int triangle) {
    long madds = 0, k0, k1;
    for (long j = 0; j < n; j += 32) {
        long i = 0;
        for (; i + 8 <= m; i += 8) {
            if (!tile_needed(triangle, i, 8, j)) continue;
            k_range(triangle, i, 8, k, &k0, &k1);
            tile_8x2(i, j, n, k0, k1, a, a_row, a_k, b, ldb, c, ldc);
            madds += 8 * 32 * (k1 - k0);
        }
        for (; i < m; i++) {
            if (!tile_needed(triangle, i, 1, j)) continue;
            k_range(triangle, i, 1, k, &k0, &k1);
            tile_1x2(i, j, n, k0, k1, a, a_row, a_k, b, ldb, c, ldc);
            madds += 32 * (k1 - k0);
        }
    }
    return madds;
}

EMBER_AVX512 long ember_attention_product_f32(int trans_a, int trans_b, long m, long n, long k, const float *a, long lda,
                                              const float *b, long ldb, float *c, long ldc, int triangle, float *scratch) {
    if (trans_b) {
        transpose_into(b, ldb, n, k, scratch);
        b = scratch;
        ldb = n;
    }
    return trans_a ? tiles(m, n, k, a, 1, lda, b, ldb, c, ldc, triangle) : tiles(m, n, k, a, lda, 1, b, ldb, c, ldc, triangle);
}
#else
int ember_attention_product_available(void) { return 0; }
long ember_attention_product_f32(int trans_a, int trans_b, long m, long n, long k, const float *a, long lda,
                                 const float *b, long ldb, float *c, long ldc, int triangle, float *scratch) { return 0; }
#endif
