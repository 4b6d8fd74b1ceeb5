#include "CEmberSupport.h"

// C = A · B for a B that stays the same over many products (a recurrent layer's weight, used at
// every time step), laid out once in panels of 16 columns, P[panel][k][0..16): OpenBLAS packs
// its B again at every call, a sixth of an LSTM step. Float32, AVX-512; callers check
// `ember_packed_product_available` and fall back to BLAS.

#if defined(__x86_64__)
#include <immintrin.h>

int ember_packed_product_available(void) { return __builtin_cpu_supports("avx512f"); }

// Two panels (32 columns) by 8 rows: 16 accumulators, each step of k two loads of B and eight
// broadcasts of A feed 16 multiply-adds.
__attribute__((target("avx512f"))) void ember_packed_product_f32(long m, long n, long k, const float *a, long lda,
                                                                  const float *p, float *c, long ldc) {
    for (long panel = 0; panel < n / 16; panel += 2) {
        const float *b0 = p + panel * k * 16, *b1 = b0 + k * 16;
        long r = 0;
        for (; r + 8 <= m; r += 8) {
            __m512 acc[8][2];
            for (int i = 0; i < 8; i++) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
            const float *ar = a + r * lda;
            for (long kk = 0; kk < k; kk++) {
                __m512 x0 = _mm512_load_ps(b0 + kk * 16), x1 = _mm512_load_ps(b1 + kk * 16);
                for (int i = 0; i < 8; i++) {
                    __m512 t = _mm512_set1_ps(ar[i * lda + kk]);
                    acc[i][0] = _mm512_fmadd_ps(t, x0, acc[i][0]);
                    acc[i][1] = _mm512_fmadd_ps(t, x1, acc[i][1]);
                }
            }
            for (int i = 0; i < 8; i++) {
                _mm512_storeu_ps(c + (r + i) * ldc + panel * 16, acc[i][0]);
                _mm512_storeu_ps(c + (r + i) * ldc + panel * 16 + 16, acc[i][1]);
            }
        }
        for (; r < m; r++) {  // the last rows of a batch that is no multiple of 8
            __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
            for (long kk = 0; kk < k; kk++) {
                __m512 t = _mm512_set1_ps(a[r * lda + kk]);
                acc0 = _mm512_fmadd_ps(t, _mm512_load_ps(b0 + kk * 16), acc0);
                acc1 = _mm512_fmadd_ps(t, _mm512_load_ps(b1 + kk * 16), acc1);
            }
            _mm512_storeu_ps(c + r * ldc + panel * 16, acc0);
            _mm512_storeu_ps(c + r * ldc + panel * 16 + 16, acc1);
        }
    }
}
#else
int ember_packed_product_available(void) { return 0; }
void ember_packed_product_f32(long m, long n, long k, const float *a, long lda, const float *p, float *c, long ldc) {}
#endif

// Panels of B = Wᵀ for W [n, k] row-major (C = A·Wᵀ, nn.Linear's layout), or of B = W [k, n].
void ember_pack_product_f32(const float *w, long k, long n, int transposed, float *p) {
    for (long panel = 0; panel < n / 16; panel++)
        for (long kk = 0; kk < k; kk++)
            for (long j = 0; j < 16; j++) {
                long col = panel * 16 + j;
                p[(panel * k + kk) * 16 + j] = transposed ? w[col * k + kk] : w[kk * n + col];
            }
}
