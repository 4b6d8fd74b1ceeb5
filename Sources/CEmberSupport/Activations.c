#include "CEmberSupport.h"
#include <stdint.h>

// GELU for float32 without libm calls, so the loops vectorise: libm's erff and expf are
// scalar calls and were a third of a small transformer's training step.
#if defined(__x86_64__) && defined(__linux__)
#define EMBER_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define EMBER_CLONES
#endif

// e^x for x <= 0 (as GELU needs it: e^(-x²/2)), relative error below 2e-7 down to the
// smallest normal float; below that it is 0. Cody-Waite range reduction and Cephes' degree-6
// polynomial for expf.
static inline float exp_nonpositive(float x) {
    x = x < -87.0f ? -87.0f : x;
    float n = __builtin_rintf(x * 1.44269504088896341f);
    float r = x - n * 0.693359375f;
    r = r + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    union { uint32_t u; float f; } scale = { .u = (uint32_t)((int32_t)n + 127) << 23 };
    return p * scale.f;
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
    for (long i = 0; i < n; i++) {
        float v = x[i];
        out[i] = v * normal_cdf(v, exp_nonpositive(-0.5f * v * v));
    }
}

// d/dx x·Φ(x) = Φ(x) + x·φ(x), times the incoming gradient.
EMBER_CLONES void ember_gelu_backward_f32(float *restrict out, const float *restrict grad, const float *restrict x, long n) {
    for (long i = 0; i < n; i++) {
        float v = x[i];
        float gauss = exp_nonpositive(-0.5f * v * v);
        out[i] = grad[i] * (normal_cdf(v, gauss) + v * gauss * 0.39894228040143267794f);
    }
}
