// Internal to CEmberProducts: the engine's per-thread product cache (Products.c), shared with
// the bfloat16 products (Bfloat16Products.c). Not part of the module's interface.
#ifndef CEMBER_PRODUCTS_ENGINE_H
#define CEMBER_PRODUCTS_ENGINE_H
#include <oneapi/dnnl/dnnl.h>
#include <stdint.h>

// One cached product: its shape is the key ({trans_a, trans_b, m, n, k, lda, ldb, ldc, alpha's
// and beta's bits, bfloat16 operands, B packed}); its memory objects are re-pointed on every call.
typedef struct {
    long key[12];
    dnnl_primitive_t primitive;
    dnnl_memory_t a, b, c;
} product;

extern dnnl_engine_t ember_engine;
// The calling thread's product for this key, made on first use; NULL when oneDNN cannot.
product *ember_product_lookup(const long *key, float alpha, float beta);
// The calling thread's stream, made on first use; NULL when oneDNN cannot.
dnnl_stream_t ember_thread_stream(void);
// Tells OpenMP the thread count `ember_products_set_threads` asked for, if it changed.
void ember_apply_threads(void);
// A matrix [rows, cols] stored row-major with leading dimension ld, or transposed in storage.
dnnl_status_t ember_matrix_desc(dnnl_memory_desc_t *md, long rows, long cols, long ld, int transposed, dnnl_data_type_t type);
// C = alpha·op(A)·op(B) + beta·C with operands of the given precision (a, b float32 or bfloat16).
int ember_run_product(int trans_a, int trans_b, long m, long n, long k, float alpha, const void *a, long lda,
                const void *b, long ldb, float beta, float *c, long ldc, int bf16);
// The calling thread's scratch `which` (0 or 1) for `count` bfloat16 values, grown as needed and kept.
uint16_t *ember_scratch(int which, long count);
#endif
