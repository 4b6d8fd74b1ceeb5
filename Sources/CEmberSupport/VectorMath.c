#include "CEmberSupport.h"
#include "Clones.h"

// Swift's squareRoot() on Linux keeps a libm fallback (for errno) after each sqrt instruction,
// which stops loops from being vectorised; clang's elementwise builtin sets no errno, so these
// plain loops vectorise.
#define EMBER_SQRT(NAME, T)                                                                        \
    EMBER_CLONES void NAME(T *out, const T *in, long n) {                                         \
        for (long i = 0; i < n; i++) out[i] = __builtin_elementwise_sqrt(in[i]);                    \
    }
EMBER_SQRT(ember_sqrt_f32, float)
EMBER_SQRT(ember_sqrt_f64, double)

// Adam's update (plain, with L2 decay `l2`, or AdamW's decoupled `scale`), element by element
// in PyTorch's order. Contraction into fused multiply-adds is off so that every build computes
// the same bits as the Swift fallback loop.
#pragma clang fp contract(off)
#define EMBER_ADAM(NAME, T)                                                                              \
    EMBER_CLONES void NAME(T *restrict p, const T *restrict g, T *restrict m, T *restrict v, long n,    \
                           T b1, T b2, T eps, T step_size, T bias2_sqrt, T scale, T l2) {               \
        for (long i = 0; i < n; i++) {                                                                  \
            T d = l2 != 0 ? g[i] + l2 * p[i] : g[i];                                                    \
            T mi = b1 * m[i] + (1 - b1) * d;                                                            \
            T vi = b2 * v[i] + (1 - b2) * d * d;                                                        \
            m[i] = mi;                                                                                  \
            v[i] = vi;                                                                                  \
            p[i] = p[i] * scale - step_size * mi / (__builtin_elementwise_sqrt(vi) / bias2_sqrt + eps); \
        }                                                                                               \
    }
EMBER_ADAM(ember_adam_f32, float)
EMBER_ADAM(ember_adam_f64, double)

// SGD with momentum after its first step (PyTorch's order: decay, momentum buffer, update).
#define EMBER_SGD_MOMENTUM(NAME, T)                                                                     \
    EMBER_CLONES void NAME(T *restrict p, const T *restrict g, T *restrict buf, long n,                \
                           T lr, T momentum, T damp, T wd) {                                            \
        for (long i = 0; i < n; i++) {                                                                  \
            T d = wd != 0 ? g[i] + wd * p[i] : g[i];                                                    \
            T b = momentum * buf[i] + damp * d;                                                         \
            buf[i] = b;                                                                                 \
            p[i] -= lr * b;                                                                             \
        }                                                                                               \
    }
EMBER_SGD_MOMENTUM(ember_sgd_momentum_f32, float)
EMBER_SGD_MOMENTUM(ember_sgd_momentum_f64, double)
