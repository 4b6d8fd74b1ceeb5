#ifndef CEMBER_SUPPORT_H
#define CEMBER_SUPPORT_H

/// Whether autograd records operations on the calling thread (1 by default).
int ember_grad_enabled(void);
/// Sets the calling thread's grad mode and returns the previous one.
int ember_set_grad_enabled(int enabled);
/// The backward pass running on the calling thread (opaque; NULL outside backward).
void *ember_current_backward(void);
/// Sets it and returns the previous one.
void *ember_set_current_backward(void *run);

/// Square roots of `n` values (in place when `out == in`), vectorised.
void ember_sqrt_f32(float *out, const float *in, long n);
/// `C [m, n] = A [m, k] · B` with B laid out once by `ember_pack_product_f32` (from W [n, k] as
/// Wᵀ when `transposed`, else W [k, n]) into `n·k` floats, 64-byte aligned; n a multiple of 32
/// (PackedProduct.c). Only where `ember_packed_product_available()` (AVX-512).
int ember_packed_product_available(void);
void ember_pack_product_f32(const float *w, long k, long n, int transposed, float *p);
void ember_packed_product_f32(long m, long n, long k, const float *a, long lda, const float *p, float *c, long ldc);
/// One attention head's product `C [m, n] = op(A) · op(B)`, float32, AVX-512 (AttentionProducts.c):
/// `triangle` skips what causal attention makes zero (EMBER_TRIANGLE_*: C's lower triangle only,
/// the rest undefined; or only k up to / from each row, the rest of A being zeros). `scratch` holds `k·n` floats when `trans_b`. Returns the multiply-adds done.
/// Only where `ember_attention_product_available()`.
enum { EMBER_TRIANGLE_NONE = 0, EMBER_TRIANGLE_OUTPUT_LOWER = 1, EMBER_TRIANGLE_K_UP_TO_ROW = 2, EMBER_TRIANGLE_K_FROM_ROW = 3 };
int ember_attention_product_available(void);
long ember_attention_product_f32(int trans_a, int trans_b, long m, long n, long k, const float *a, long lda,
                                 const float *b, long ldb, float *c, long ldc, int triangle, float *scratch);
/// Attention's fused scale-mask-softmax over rows of `cols` and its gradient, float32, vectorised
/// (Activations.c; Kernels.attentionSoftmax keeps the float64 loops).
void ember_attention_softmax_f32(const float *s, const float *mask, long mask_stride, float *out, long batch, long rows, long cols,
                                 float scale, int causal);
void ember_attention_softmax_backward_f32(const float *g, const float *p, float *out, long n, long cols, float scale,
                                          long first_row, long causal_rows);
/// Layer normalisation of `rows` float32 rows of `width` (w, b may be NULL), and its gradient
/// (`dw`, `db` accumulated into zeroed buffers) (Normalization.c).
void ember_layer_norm_f32(const float *x, const float *w, const float *b, float *y, float *mean, float *rstd,
                          long rows, long width, float eps);
void ember_layer_norm_backward_f32(const float *g, const float *x, const float *mean, const float *rstd, const float *w,
                                   float *dx, float *dw, float *db, long rows, long width);
/// GELU (exact form, to float32 precision) and its gradient `grad · (Φ(x) + x φ(x))`, vectorised.
void ember_gelu_f32(float *out, const float *x, long n);
void ember_gelu_backward_f32(float *out, const float *grad, const float *x, long n);
/// GPT-2's tanh-approximated GELU and its gradient, vectorised (no libm calls).
void ember_gelu_tanh_f32(float *out, const float *x, long n);
void ember_gelu_tanh_backward_f32(float *out, const float *grad, const float *x, long n);
/// SiLU and its gradient, vectorised.
void ember_silu_f32(float *out, const float *x, long n);
void ember_silu_backward_f32(float *out, const float *grad, const float *x, long n);
/// Row softmaxes and log-sum-exps of float32 logits (cross-entropy's forward), vectorised.
void ember_softmax_rows_f32(const float *x, float *softmax, float *lse, long rows, long cols);
/// One step of an LSTM or GRU cell for the active rows, forward and backward (Activations.c).
/// The LSTM's `bias` (may be NULL) is added to `xp` before `hh`.
void ember_lstm_step_f32(long n, long h, const float *xp, const float *bias, const float *hh, const float *c_prev, float *gates,
                         float *c_next, float *y, const unsigned char *active);
/// Backward: `g_out` (may be NULL; rows `ldg` apart) is added to `dy`; `dhh` (may be NULL: dxp
/// only) gets a copy of the gate gradients; `db` (may be NULL) accumulates them (the bias gradient).
void ember_lstm_step_backward_f32(long n, long h, const float *gates, const float *c_prev, const float *c_next, const float *dy,
                                  const float *g_out, long ldg, float *dc, float *dxp, float *dhh, float *db, const unsigned char *active);
void ember_gru_step_f32(long n, long h, const float *xp, const float *hh, const float *b_hh, const float *h_prev, float *gates,
                        float *hhn, float *h_next, const unsigned char *active);
void ember_gru_step_backward_f32(long n, long h, const float *gates, const float *hhn, const float *h_prev, const float *dy,
                                 float *dxp, float *dhh, const unsigned char *active);
void ember_sqrt_f64(double *out, const double *in, long n);
/// One step of SGD with momentum over `n` elements (see VectorMath.c); the arrays must not overlap.
void ember_sgd_momentum_f32(float *p, const float *g, float *buf, long n, float lr, float momentum, float damp, float wd);
void ember_sgd_momentum_f64(double *p, const double *g, double *buf, long n, double lr, double momentum, double damp, double wd);
/// One Adam step over `n` elements (see VectorMath.c); the arrays must not overlap.
void ember_adam_f32(float *p, const float *g, float *m, float *v, long n,
                    float b1, float b2, float eps, float step_size, float bias2_sqrt, float scale, float l2);
void ember_adam_f64(double *p, const double *g, double *m, double *v, long n,
                    double b1, double b2, double eps, double step_size, double bias2_sqrt, double scale, double l2);

/// Ints between two ranks' barrier counters (a cache line of 64 bytes, doubled against prefetch).
#define EMBER_SHM_COUNTER_STRIDE 32
/// Barrier of `world` processes over counters in shared memory (see SharedMemory.c).
void ember_shm_barrier(int *counters, int rank, int world, int epoch, long spin_limit);
/// `out[i] = a[i] + b[i]`; `out` may be `a` or `b` (see SharedMemory.c).
void ember_add_f32(float *out, const float *a, const float *b, long n);
void ember_add_f64(double *out, const double *a, const double *b, long n);
/// `out[i] = Σ_r inputs[r][i]` over `count` arrays of `n` values, in rank order.
void ember_sum_f32(float *out, float *const *inputs, int count, long n);
void ember_sum_f64(double *out, double *const *inputs, int count, long n);

/// An atomic store (release) and load (acquire) of a 64-bit word in shared memory.
void ember_store_u64(unsigned long long *p, unsigned long long v);
unsigned long long ember_load_u64(const unsigned long long *p);

#endif
