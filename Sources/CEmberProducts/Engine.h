// Internal to CEmberProducts: the engine's per-thread product cache (Products.c), shared with
// the bfloat16 products (Bfloat16Products.c). Not part of the module's interface.
#ifndef CEMBER_PRODUCTS_ENGINE_H
#define CEMBER_PRODUCTS_ENGINE_H
#include <oneapi/dnnl/dnnl.h>
#include <stdint.h>

// One cached product: its shape is the key ({trans_a, trans_b, m, n, k, lda, ldb, ldc, alpha's
// and beta's bits, bfloat16 operands, B packed, threads}); its memory objects are re-pointed on
// every call. oneDNN fixes a primitive's thread count when it makes it, so the count is keyed.
enum { EMBER_KEY = 13 };
typedef struct {
    long key[EMBER_KEY];
    dnnl_primitive_t primitive;
    dnnl_memory_t a, b, c;
} product;

extern dnnl_engine_t ember_engine;
// The calling thread's product for this key, made on first use; NULL when oneDNN cannot.
product *ember_product_lookup(const long *key, float alpha, float beta);
// The calling thread's stream, made on first use; NULL when oneDNN cannot.
dnnl_stream_t ember_thread_stream(void);
// The threads a product of this size runs on: those `ember_products_set_threads` asked for, or
// one for a product too small to share.
int ember_product_threads(long m, long n, long k);
// Tells OpenMP the calling thread's product thread count, if it changed.
void ember_apply_threads(int threads);
// A matrix [rows, cols] stored row-major with leading dimension ld, or transposed in storage.
dnnl_status_t ember_matrix_desc(dnnl_memory_desc_t *md, long rows, long cols, long ld, int transposed, dnnl_data_type_t type);
// C = alpha·op(A)·op(B) + beta·C with operands of the given precision (a, b float32 or bfloat16).
int ember_run_product(int trans_a, int trans_b, long m, long n, long k, float alpha, const void *a, long lda,
                const void *b, long ldb, float beta, float *c, long ldc, int bf16);
// The calling thread's scratch `which` (0 or 1) for `count` bfloat16 values, grown as needed and kept.
uint16_t *ember_scratch(int which, long count);
#endif
