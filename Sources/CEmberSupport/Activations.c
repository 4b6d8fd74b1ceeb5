#include "CEmberSupport.h"
#include "Clones.h"
#include <stdint.h>
#include <string.h>

// Loops of exponentials run four vectors at a time (`EMBER_INTERLEAVED_FOR`): each exponential
// is a chain of dependent multiply-adds, and four independent chains keep the units busy (an
// LSTM step's gates: 1.4x faster). Only over whole blocks of 16-lane vectors: a loop shorter
// than that would run scalar, so rows are split at the block and the rest runs one vector at a
// time. A body with many exponentials runs out of registers at four: the LSTM's forward cell
// (five) spilled, and runs two at a time (`EMBER_INTERLEAVED_FOR_BY(2, ...)`: its kernel took
// 17% fewer samples in the bf16 lstm step; one at a time, 10% more).
#define EMBER_PRAGMA_(text) _Pragma(#text)
#define EMBER_INTERLEAVED_FOR_BY(ways, i, n, ...)                                                 \
    do {                                                                                          \
        long ember_blocked_ = (n) - (n) % (16 * (ways));                                          \
        EMBER_PRAGMA_(clang loop interleave_count(ways))                                          \
        for (long i = 0; i < ember_blocked_; i++) { __VA_ARGS__ }                                 \
        for (long i = ember_blocked_; i < (n); i++) { __VA_ARGS__ }                               \
    } while (0)
// `for (long i = 0; i < n; i++) { body }` four vectors at a time, then the rest.
#define EMBER_INTERLEAVED_FOR(i, n, ...) EMBER_INTERLEAVED_FOR_BY(4, i, n, __VA_ARGS__)
// GELU for float32 without libm calls, so the loops vectorise: libm's erff and expf are
// scalar calls and were a third of a small transformer's training step.

// e^x for x in [-87, 88], relative error below 2e-7: Cody-Waite range reduction and Cephes'
// degree-6 polynomial for expf. Written once for a float and for a vector of floats (`T`):
// `ROUND` rounds to an integer, `POW2` makes 2^n from it.
#define EMBER_EXP_BOUNDED(T, x, ROUND, POW2)                                                      \
    ({                                                                                            \
        T n_ = ROUND((x) * 1.44269504088896341f);                                                 \
        T r_ = (x) - n_ * 0.693359375f;                                                           \
        r_ = r_ + n_ * 2.12194440e-4f;                                                            \
        T p_ = 1.9875691500e-4f;                                                                  \
        p_ = p_ * r_ + 1.3981999507e-3f;                                                          \
        p_ = p_ * r_ + 8.3334519073e-3f;                                                          \
        p_ = p_ * r_ + 4.1665795894e-2f;                                                          \
        p_ = p_ * r_ + 1.6666665459e-1f;                                                          \
        p_ = p_ * r_ + 5.0000001201e-1f;                                                          \
        p_ = p_ * r_ * r_ + r_ + 1.0f;                                                            \
        p_ * POW2(n_);                                                                            \
    })
static inline float pow2_float(float n) {
    union { uint32_t u; float f; } scale = { .u = (uint32_t)((int32_t)n + 127) << 23 };
    return scale.f;
}
static inline float exp_bounded(float x) { return EMBER_EXP_BOUNDED(float, x, __builtin_rintf, pow2_float); }

// e^x for x <= 0 (as GELU needs it: e^(-x²/2)); 0 below float's smallest normal numbers.
static inline float exp_nonpositive(float x) { return exp_bounded(x < -87.0f ? -87.0f : x); }

// The recurrent gates' functions over float's whole range (absolute error about 1e-7).
static inline float sigmoid_fast(float x) {
    x = x < -87.0f ? -87.0f : (x > 87.0f ? 87.0f : x);
    return 1.0f / (1.0f + exp_bounded(-x));
}
static inline float tanh_fast(float x) {
    float a = x < 0 ? -x : x;
    float e = exp_bounded(a > 43.0f ? -86.0f : -2.0f * a);
    float t = (1.0f - e) / (1.0f + e);
    return x < 0 ? -t : t;
}

// Φ(x), the standard normal CDF, from erf by Abramowitz and Stegun 7.1.26 (absolute error
// below 1.5e-7, float32's resolution near 1), with the density's e^(-x²/2) shared.
static inline float normal_cdf(float x, float gauss) {
    float z = (x < 0 ? -x : x) * 0.70710678118654752f;
    float t = 1.0f / (1.0f + 0.3275911f * z);
    float poly = t * (0.254829592f + t * (-0.284496736f + t * (1.421413741f + t * (-1.453152027f + t * 1.061405429f))));
    float tail = 0.5f * poly * gauss;
    return x >= 0 ? 1.0f - tail : tail;
}

EMBER_CLONES void ember_gelu_f32(float *restrict out, const float *restrict x, long n) {
    EMBER_INTERLEAVED_FOR(i, n, float v = x[i]; out[i] = v * normal_cdf(v, exp_nonpositive(-0.5f * v * v)););
}

// d/dx x·Φ(x) = Φ(x) + x·φ(x), times the incoming gradient.
EMBER_CLONES void ember_gelu_backward_f32(float *restrict out, const float *restrict grad, const float *restrict x, long n) {
    EMBER_INTERLEAVED_FOR(i, n,
        float v = x[i];
        float gauss = exp_nonpositive(-0.5f * v * v);
        out[i] = grad[i] * (normal_cdf(v, gauss) + v * gauss * 0.39894228040143267794f););
}

// GPT-2's GELU, x/2·(1 + tanh(u)) with u = √(2/π)·(x + 0.044715x³), and its derivative
// (1 + t)/2 + x/2·(1 − t²)·√(2/π)·(1 + 3·0.044715x²), times the incoming gradient: libm's
// tanhf (through expm1f) was a sixth of a 124M GPT-2's fine-tuning step.
EMBER_CLONES void ember_gelu_tanh_f32(float *restrict out, const float *restrict x, long n) {
    EMBER_INTERLEAVED_FOR(i, n,
        float v = x[i];
        out[i] = 0.5f * v * (1.0f + tanh_fast(0.79788456080286535588f * (v + 0.044715f * v * v * v))););
}

EMBER_CLONES void ember_gelu_tanh_backward_f32(float *restrict out, const float *restrict grad, const float *restrict x, long n) {
    EMBER_INTERLEAVED_FOR(i, n,
        float v = x[i];
        float t = tanh_fast(0.79788456080286535588f * (v + 0.044715f * v * v * v));
        float du = 0.79788456080286535588f * (1.0f + 0.134145f * v * v);
        out[i] = grad[i] * (0.5f * (1.0f + t) + 0.5f * v * (1.0f - t * t) * du););
}

// SiLU, x·σ(x) (Llama's MLP), and its derivative σ(x)·(1 + x·(1 − σ(x))), without libm.
EMBER_CLONES void ember_silu_f32(float *restrict out, const float *restrict x, long n) {
    EMBER_INTERLEAVED_FOR(i, n, out[i] = x[i] * sigmoid_fast(x[i]););
}

EMBER_CLONES void ember_silu_backward_f32(float *restrict out, const float *restrict grad, const float *restrict x, long n) {
    EMBER_INTERLEAVED_FOR(i, n, float s = sigmoid_fast(x[i]); out[i] = grad[i] * s * (1.0f + x[i] * (1.0f - s)););
}

// Cross-entropy's forward over `rows` rows of `cols` logits: each row's softmax into `softmax`
// and its log-sum-exp into `lse` (the loss is lse − x[target]). libm's expf per logit was a
// twentieth of a 124M GPT-2's step (50,257 logits a token). The row's maximum and sum are
// vectorised reductions (their order of additions is the vector's, fixed for a build and CPU):
// kept in order they ran scalar, 2.4x (76 logits) to 7.7x (50,257) slower.
EMBER_CLONES void ember_softmax_rows_f32(const float *restrict x, float *restrict softmax, float *restrict lse, long rows, long cols) {
#pragma clang fp reassociate(on)
    for (long r = 0; r < rows; r++) {
        const float *row = x + r * cols;
        float *out = softmax + r * cols;
        float m = -__builtin_inff();
        for (long j = 0; j < cols; j++) m = __builtin_fmaxf(m, row[j]);  // NaN is passed over, as by `>`
        float total = 0.0f;
        for (long j = 0; j < cols; j++) {
            float e = exp_nonpositive(row[j] - m);
            out[j] = e;
            total += e;
        }
        float inverse = 1.0f / total;
        for (long j = 0; j < cols; j++) out[j] *= inverse;
        lse[r] = m + __builtin_logf(total);
    }
}

// One step of the recurrent cells for the rows whose `active` flag is set (the others are left
// alone): `xp` and `hh` are the input and recurrent products (biases included as the cell
// needs), `gates` receives the activated gates, then the new state. Backward takes the step's
// gates and states and the gradient reaching its output, and writes the gradient of the gate
// pre-activations into `dxp` (input side) and `dhh` (recurrent side).

// One LSTM cell's gates and state (the body of the step's loops below; inlined, or each clone
// would call a scalar copy). `bias` (NULL: none) is added to the input side first, so the sums
// are those of adding it to the input projection beforehand, without another pass over it.
static inline __attribute__((always_inline)) void lstm_cell(long j, long h, const float *restrict a, const float *restrict bias,
                             const float *restrict b, const float *restrict c_prev, float *restrict g, float *restrict c_next,
                             float *restrict y) {
    float ai = a[j], af = a[h + j], ag = a[2 * h + j], ao = a[3 * h + j];
    if (bias) { ai += bias[j]; af += bias[h + j]; ag += bias[2 * h + j]; ao += bias[3 * h + j]; }
    float i = sigmoid_fast(ai + b[j]), f = sigmoid_fast(af + b[h + j]);
    float gg = tanh_fast(ag + b[2 * h + j]), o = sigmoid_fast(ao + b[3 * h + j]);
    float c = f * c_prev[j] + i * gg;
    g[j] = i; g[h + j] = f; g[2 * h + j] = gg; g[3 * h + j] = o;
    c_next[j] = c;
    y[j] = o * tanh_fast(c);
}
EMBER_CLONES void ember_lstm_step_f32(long n, long h, const float *restrict xp, const float *restrict bias, const float *restrict hh,
                                      const float *restrict c_prev, float *restrict gates, float *restrict c_next, float *restrict y,
                                      const unsigned char *active) {
    for (long r = 0; r < n; r++) {
        if (!active[r]) continue;
        const float *a = xp + r * 4 * h, *b = hh + r * 4 * h, *cp = c_prev + r * h;
        float *g = gates + r * 4 * h, *cn = c_next + r * h, *yr = y + r * h;
        // Specialised both ways, so the loop has no branches.
        if (bias) EMBER_INTERLEAVED_FOR_BY(2, j, h, lstm_cell(j, h, a, bias, b, cp, g, cn, yr););
        else EMBER_INTERLEAVED_FOR_BY(2, j, h, lstm_cell(j, h, a, NULL, b, cp, g, cn, yr););
    }
}

// One row's element j of an LSTM step backward: `d` is the gradient of the step's output (plus
// `g_out`'s, when given); the gate gradients go to `p`.
static inline __attribute__((always_inline)) void lstm_cell_backward(long j, long h, const float *g, const float *cp,
                                                                     const float *cn, const float *dy, const float *g_out,
                                                                     float *dc, float *p) {
    float i = g[j], f = g[h + j], gg = g[2 * h + j], o = g[3 * h + j];
    float tc = tanh_fast(cn[j]);
    float d = g_out ? dy[j] + g_out[j] : dy[j];
    float dct = dc[j] + d * o * (1 - tc * tc);
    float di = dct * gg * i * (1 - i), df = dct * cp[j] * f * (1 - f);
    float dg = dct * i * (1 - gg * gg), dout = d * tc * o * (1 - o);
    p[j] = di; p[h + j] = df; p[2 * h + j] = dg; p[3 * h + j] = dout;
    dc[j] = dct * f;
}
EMBER_CLONES void ember_lstm_step_backward_f32(long n, long h, const float *restrict gates, const float *restrict c_prev,
                                               const float *restrict c_next, const float *restrict dy, const float *restrict g_out,
                                               long ldg, float *restrict dc, float *restrict dxp, float *dhh, float *restrict db,
                                               const unsigned char *active) {
    for (long r = 0; r < n; r++) {
        if (!active[r]) continue;
        const float *g = gates + r * 4 * h, *cp = c_prev + r * h, *cn = c_next + r * h, *d = dy + r * h;
        const float *go = g_out ? g_out + r * ldg : NULL;
        float *p = dxp + r * 4 * h, *dcr = dc + r * h;
        // The next row's gates and cells, from the tape (megabytes: far from cache), asked for
        // now: the loads stalled the kernel, whose eight input streams outrun the prefetcher
        // (15% fewer samples in the bf16 lstm step; the forward kernel gained nothing from it).
        if (r + 1 < n) {
            const char *ng = (const char *)(g + 4 * h), *ncp = (const char *)(cp + h), *ncn = (const char *)(cn + h);
            for (long b = 0; b < 4 * h * (long)sizeof(float); b += 64) __builtin_prefetch(ng + b);
            for (long b = 0; b < h * (long)sizeof(float); b += 64) { __builtin_prefetch(ncp + b); __builtin_prefetch(ncn + b); }
        }
        // Specialised for the usual call (with `g_out`), so its loop has no branches.
        if (go) EMBER_INTERLEAVED_FOR(j, h, lstm_cell_backward(j, h, g, cp, cn, d, go, dcr, p););
        else EMBER_INTERLEAVED_FOR(j, h, lstm_cell_backward(j, h, g, cp, cn, d, NULL, dcr, p););
        // The row's gate gradients, still in L1, added to the bias gradient.
        if (db) for (long j = 0; j < 4 * h; j++) db[j] += p[j];
        if (dhh) memcpy(dhh + r * 4 * h, p, (size_t)(4 * h) * sizeof(float));
    }
}

// GRU: `hh` is h W_hhᵀ without its bias, `b_hh` (may be NULL) is added here (b_hn sits inside r ⊙ ·).
EMBER_CLONES void ember_gru_step_f32(long n, long h, const float *restrict xp, const float *restrict hh, const float *restrict b_hh,
                                     const float *restrict h_prev, float *restrict gates, float *restrict hhn, float *restrict h_next,
                                     const unsigned char *active) {
    for (long r = 0; r < n; r++) {
        if (!active[r]) continue;
        const float *a = xp + r * 3 * h, *b = hh + r * 3 * h;
        float *g = gates + r * 3 * h;
        for (long j = 0; j < h; j++) {
            float br = b_hh ? b_hh[j] : 0, bz = b_hh ? b_hh[h + j] : 0, bn = b_hh ? b_hh[2 * h + j] : 0;
            float hn = b[2 * h + j] + bn;
            float rr = sigmoid_fast(a[j] + b[j] + br), z = sigmoid_fast(a[h + j] + b[h + j] + bz);
            float nn = tanh_fast(a[2 * h + j] + rr * hn);
            g[j] = rr; g[h + j] = z; g[2 * h + j] = nn;
            hhn[r * h + j] = hn;
            h_next[r * h + j] = (1 - z) * nn + z * h_prev[r * h + j];
        }
    }
}

EMBER_CLONES void ember_gru_step_backward_f32(long n, long h, const float *restrict gates, const float *restrict hhn,
                                              const float *restrict h_prev, const float *restrict dy,
                                              float *restrict dxp, float *restrict dhh, const unsigned char *active) {
    for (long r = 0; r < n; r++) {
        if (!active[r]) continue;
        const float *g = gates + r * 3 * h;
        float *p = dxp + r * 3 * h, *q = dhh + r * 3 * h;
        for (long j = 0; j < h; j++) {
            float rr = g[j], z = g[h + j], nn = g[2 * h + j], d = dy[r * h + j];
            float dn = d * (1 - z) * (1 - nn * nn);
            float dr = dn * hhn[r * h + j] * rr * (1 - rr);
            float dz = d * (h_prev[r * h + j] - nn) * z * (1 - z);
            p[j] = q[j] = dr; p[h + j] = q[h + j] = dz; p[2 * h + j] = dn; q[2 * h + j] = dn * rr;
        }
    }
}

// Attention rows run sixteen lanes at a time, in vectors of Clang's own (lowered to one zmm, two
// ymm or four xmm registers by the clone): as loops left to the vectoriser, the row's max (a
// reduction it will not take without nnan) ran scalar, and so did the tails of the exp loop,
// whose rows are short (causal: 1 to 64 columns): ~100 ns a 64-column row, most of the kernel.
// (The helpers taking vectors are always inlined into the clones, so no vector crosses a call:
// the compiler's warning about a vector argument's ABI without AVX-512 does not apply.)
#pragma clang diagnostic ignored "-Wpsabi"
typedef float ember_f16v __attribute__((ext_vector_type(16)));
typedef int ember_i16v __attribute__((ext_vector_type(16)));
#define EMBER_LOAD16(p) ({ ember_f16v v_; memcpy(&v_, (p), sizeof v_); v_; })
#define EMBER_STORE16(p, v) do { ember_f16v v_ = (v); memcpy((p), &v_, sizeof v_); } while (0)
#define EMBER_LANES ((ember_i16v){0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15})

// The lanes' maximum (NaN-free lanes) and sum, each in one fixed order on every CPU.
static inline __attribute__((always_inline)) float max16(ember_f16v v) {
    ember_f16v h = __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7);
    v = v > h ? v : h;
    h = __builtin_shufflevector(v, v, 4, 5, 6, 7, 0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3);
    v = v > h ? v : h;
    h = __builtin_shufflevector(v, v, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1);
    v = v > h ? v : h;
    return v[0] > v[1] ? v[0] : v[1];
}
static inline __attribute__((always_inline)) float sum16(ember_f16v v) {
    v += __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7);
    v += __builtin_shufflevector(v, v, 4, 5, 6, 7, 0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3);
    v += __builtin_shufflevector(v, v, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1);
    return v[0] + v[1];
}

// e^x lane by lane for x <= 0, as exp_nonpositive.
#define EMBER_POW2_16(n) ((ember_f16v)((__builtin_convertvector((n), ember_i16v) + 127) << 23))
static inline __attribute__((always_inline)) ember_f16v exp_nonpositive16(ember_f16v x) {
    x = x < -87.0f ? -87.0f : x;
    return EMBER_EXP_BOUNDED(ember_f16v, x, __builtin_elementwise_rint, EMBER_POW2_16);
}

// One row: softmax(scale·src + add) over its first `width` of `cols` columns, zeros after.
// Whole 16-column blocks cover `width` where the row has them (their lanes past `width` read the
// row's own memory and are masked); a row narrower than a block's multiple ends in scalar lanes.
static inline __attribute__((always_inline)) void attention_softmax_row(const float *restrict src, const float *restrict add,
                                                                        float *restrict dst, long width, long cols, float scale) {
    long covered = (width + 15) / 16 * 16, end = covered <= cols ? covered : cols / 16 * 16;
    ember_f16v top16 = -__builtin_inff();
    ember_i16v nan16 = 0;
    for (long c = 0; c < end; c += 16) {
        ember_f16v z = EMBER_LOAD16(src + c) * scale;
        if (add) z += EMBER_LOAD16(add + c);
        z = EMBER_LANES + (int)c < (int)width ? z : -__builtin_inff();
        EMBER_STORE16(dst + c, z);
        nan16 |= z != z;
        top16 = z > top16 ? z : top16;
    }
    float top = max16(top16);
    int nan = __builtin_reduce_or(nan16) != 0;
    for (long c = end; c < width; c++) {
        float z = src[c] * scale + (add ? add[c] : 0.0f);
        dst[c] = z;
        nan |= z != z;
        top = z > top ? z : top;
    }
    if (nan || top == -__builtin_inff()) {
        // NaN scores make their row's weights NaN (as exp would); masked columns stay 0.
        for (long c = 0; c < cols; c++) dst[c] = nan && c < width ? __builtin_nanf("") : 0.0f;
        return;
    }
    ember_f16v total16 = 0;
    for (long c = 0; c < end; c += 16) {
        ember_f16v e = exp_nonpositive16(EMBER_LOAD16(dst + c) - top);
        e = EMBER_LANES + (int)c < (int)width ? e : 0.0f;
        EMBER_STORE16(dst + c, e);
        total16 += e;
    }
    float total = sum16(total16);
    for (long c = end; c < width; c++) {
        float e = exp_nonpositive(dst[c] - top);
        dst[c] = e;
        total += e;
    }
    const float inv = 1.0f / total;
    for (long c = 0; c < end; c += 16) EMBER_STORE16(dst + c, EMBER_LOAD16(dst + c) * inv);
    for (long c = end; c < width; c++) dst[c] *= inv;
    for (long c = end > width ? end : width; c < cols; c++) dst[c] = 0;
}

// softmax(scale·s + mask) over each row of `cols` (rows of `batch` blocks of `rows`), causal or
// not, as Kernels.attentionSoftmax; `mask` (additive, may be NULL) advances `mask_stride` per
// block (0: one [rows, cols] mask for all). A row with nothing to attend to is zeros; NaN scores
// give NaN weights. The same bits on every CPU (the sums' order is the vectors').
EMBER_CLONES void ember_attention_softmax_f32(const float *restrict s, const float *restrict mask, long mask_stride,
                                              float *restrict out, long batch, long rows, long cols, float scale, int causal) {
    for (long b = 0; b < batch; b++) {
        for (long r = 0; r < rows; r++) {
            const float *add = mask ? mask + b * mask_stride + r * cols : 0;
            long width = causal ? (r + 1 < cols ? r + 1 : cols) : cols;
            attention_softmax_row(s + (b * rows + r) * cols, add, out + (b * rows + r) * cols, width, cols, scale);
        }
    }
}

// Its gradient with respect to the logits: scale·p·(g - Σ g·p) per row. With `causal_rows`
// (rows per causal block; row `first_row + r` of the block sees columns up to its own index),
// only the columns a row attends to are read and the others get 0, so `g` may hold anything
// there (attention's products skip them).
EMBER_CLONES void ember_attention_softmax_backward_f32(const float *restrict g, const float *restrict p, float *restrict out,
                                                       long n, long cols, float scale, long first_row, long causal_rows) {
#pragma clang fp reassociate(on)
    for (long r = 0; r < n; r++) {
        const float *gr = g + r * cols, *pr = p + r * cols;
        float *dr = out + r * cols;
        long row = causal_rows ? (first_row + r) % causal_rows : 0;
        long width = causal_rows && row + 1 < cols ? row + 1 : cols;
        float dot = 0;
        for (long c = 0; c < width; c++) dot += gr[c] * pr[c];
        for (long c = 0; c < width; c++) dr[c] = scale * pr[c] * (gr[c] - dot);
        for (long c = width; c < cols; c++) dr[c] = 0;
    }
}
