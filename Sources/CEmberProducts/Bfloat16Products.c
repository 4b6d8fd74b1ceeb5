// bfloat16 products on the engine of Products.c: the autocast switch, products whose operands
// are rounded on the way or already bfloat16, and weights packed once for many products.
#include "CEmberProducts.h"
#include "Engine.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static __thread int autocast_bf16;
int ember_products_bf16(void) { return autocast_bf16; }
int ember_products_set_bf16(int on) {
    int previous = autocast_bf16;
    autocast_bf16 = on;
    return previous;
}

// An operand rounded into the calling thread's scratch `which` unless it already is bfloat16;
// afterwards `*x` and `*ld` describe the bfloat16 copy.
static int as_bf16(int which, const void **x, long *ld, int rounded, long rows, long cols) {
    if (rounded) return 0;
    uint16_t *r = ember_scratch(which, rows * cols);
    if (!r) return -1;
    ember_round_bf16((const float *)*x, rows, cols, *ld, r);
    *x = r;
    *ld = cols;
    return 0;
}

int ember_gemm_bf16(int trans_a, int trans_b, long m, long n, long k, float alpha, const void *a, int a_rounded, long lda,
                    const void *b, int b_rounded, long ldb, float beta, float *c, long ldc) {
    if (k <= 0 || !ember_bf16_available()) return -1;
    if (as_bf16(0, &a, &lda, a_rounded, trans_a ? k : m, trans_a ? m : k)) return -1;
    if (as_bf16(1, &b, &ldb, b_rounded, trans_b ? n : k, trans_b ? k : n)) return -1;
    return ember_run_product(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, 1);
}

int ember_sgemm_bf16(int trans_a, int trans_b, long m, long n, long k, float alpha, const float *a, long lda,
                     const float *b, long ldb, float beta, float *c, long ldc) {
    if (k <= 0) return -1;
    if (ember_bf16_available() && ember_gemm_bf16(trans_a, trans_b, m, n, k, alpha, a, 0, lda, b, 0, ldb, beta, c, ldc) == 0) return 0;
    // Without bfloat16 units (or a bf16 product oneDNN would not build): the same roundings,
    // widened back to float32 (emulation), never the float32 product unrounded.
    long rows_a = trans_a ? k : m, cols_a = trans_a ? m : k, rows_b = trans_b ? n : k, cols_b = trans_b ? k : n;
    long na = rows_a * cols_a, nb = rows_b * cols_b;
    uint16_t *ra = ember_scratch(0, 3 * na + 2), *rb = ember_scratch(1, 3 * nb + 2);
    if (!ra || !rb) return -1;
    ember_round_bf16(a, rows_a, cols_a, lda, ra);
    ember_round_bf16(b, rows_b, cols_b, ldb, rb);
    float *wa = (float *)(ra + na + (na & 1)), *wb = (float *)(rb + nb + (nb & 1));
    for (long i = 0; i < na; i++) { uint32_t v = (uint32_t)ra[i] << 16; memcpy(wa + i, &v, 4); }
    for (long i = 0; i < nb; i++) { uint32_t v = (uint32_t)rb[i] << 16; memcpy(wb + i, &v, 4); }
    return ember_run_product(trans_a, trans_b, m, n, k, alpha, wa, cols_a, wb, cols_b, beta, c, ldc, 0);
}

// A weight rounded to bfloat16 and laid out once as oneDNN's kernels for one product shape want
// it (blocked, pairs of k interleaved), so the steps of a sequence do not each repack it.
struct ember_packed_weight {
    long key[EMBER_KEY];
    dnnl_memory_t memory;
};

ember_packed_weight *ember_pack_weight_bf16(int trans_b, long m, long n, long k, long lda, long ldc, const float *b, long ldb) {
    dnnl_stream_t stream = k > 0 && ember_bf16_available() && ember_products_available() ? ember_thread_stream() : NULL;
    if (!stream) return NULL;
    long rows = trans_b ? n : k, cols = trans_b ? k : n;
    uint16_t *plain = ember_scratch(1, rows * cols);
    if (!plain) return NULL;
    ember_round_bf16(b, rows, cols, ldb, plain);
    uint32_t one = 0x3f800000u;  // alpha 1, beta 0
    int threads = ember_product_threads(m, n, k);
    long key[EMBER_KEY] = {0, trans_b != 0, m, n, k, lda, cols, ldc, one, 0, 1, 1, threads};
    product *p = ember_product_lookup(key, 1, 0);
    if (!p) return NULL;
    const_dnnl_primitive_desc_t pd;
    dnnl_memory_desc_t from;
    if (dnnl_primitive_get_primitive_desc(p->primitive, &pd) != dnnl_success || ember_matrix_desc(&from, k, n, cols, trans_b, dnnl_bf16)) return NULL;
    const dnnl_memory_desc_t *to = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    ember_packed_weight *w = calloc(1, sizeof *w);
    dnnl_primitive_desc_t rpd = NULL;
    dnnl_primitive_t reorder = NULL;
    dnnl_memory_t source = NULL;
    int ok = w && dnnl_memory_create(&w->memory, to, ember_engine, DNNL_MEMORY_ALLOCATE) == dnnl_success
        && dnnl_reorder_primitive_desc_create(&rpd, &from, ember_engine, to, ember_engine, NULL) == dnnl_success
        && dnnl_primitive_create(&reorder, rpd) == dnnl_success
        && dnnl_memory_create(&source, &from, ember_engine, plain) == dnnl_success;
    if (ok) {
        ember_apply_threads(threads);
        dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, source}, {DNNL_ARG_TO, w->memory}};
        ok = dnnl_primitive_execute(reorder, stream, 2, args) == dnnl_success;
    }
    if (source) dnnl_memory_destroy(source);
    if (reorder) dnnl_primitive_destroy(reorder);
    if (rpd) dnnl_primitive_desc_destroy(rpd);
    if (!ok) {
        ember_free_packed_weight(w);
        return NULL;
    }
    memcpy(w->key, key, sizeof key);
    return w;
}

int ember_gemm_packed_bf16(const ember_packed_weight *w, const void *a, int a_rounded, float *c) {
    long m = w->key[2], k = w->key[4], lda = w->key[5];
    if (!a_rounded) {
        // Rounded into a copy whose rows are k apart: the product must have been made for that.
        uint16_t *ra = lda == k ? ember_scratch(0, m * k) : NULL;
        if (!ra) return -1;
        ember_round_bf16((const float *)a, m, k, lda, ra);
        a = ra;
    }
    product *p = ember_product_lookup(w->key, 1, 0);
    dnnl_stream_t stream = ember_thread_stream();
    if (!p || !stream) return -1;
    ember_apply_threads((int)w->key[12]);
    dnnl_memory_set_data_handle(p->a, (void *)a);
    dnnl_memory_set_data_handle(p->c, c);
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, p->a}, {DNNL_ARG_WEIGHTS, w->memory}, {DNNL_ARG_DST, p->c}};
    return dnnl_primitive_execute(p->primitive, stream, 3, args) == dnnl_success ? 0 : -1;
}

void ember_free_packed_weight(ember_packed_weight *w) {
    if (!w) return;
    if (w->memory) dnnl_memory_destroy(w->memory);
    free(w);
}
