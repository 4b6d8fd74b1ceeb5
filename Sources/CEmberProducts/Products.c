// oneDNN's matmul primitive as Ember's float32 product engine. A primitive is JIT-compiled for
// one shape (transposes, sizes, leading dimensions, alpha, beta), so each thread keeps the ones
// it made in a small hash table and only points their memory at new buffers on later calls.
// oneDNN runs on OpenMP: its thread count is OpenMP's per-thread setting, applied lazily.
// Bfloat16Products.c runs the bf16 products on the same cache (Engine.h).
#include "CEmberProducts.h"
#include <cpuid.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if __has_include(<oneapi/dnnl/dnnl.h>)
#include <oneapi/dnnl/dnnl.h>
#else
#error "Ember needs oneDNN for its matrix products: apt-get install libdnnl-dev (launch/run installs it)"
#endif
#include "Engine.h"

dnnl_engine_t ember_engine;
static int engine_ok;
static pthread_once_t engine_once = PTHREAD_ONCE_INIT;
static void (*set_omp_threads)(int);
// libgomp's entry for `#pragma omp parallel` (its ABI since GCC 4.9) and the team queries.
static void (*gomp_parallel)(void (*)(void *), void *, unsigned, unsigned);
static int (*omp_thread_num)(void), (*omp_num_threads)(void);
static atomic_int wanted_threads;  // 0 until set: OpenBLAS's count then (configured_threads)
static __thread int in_team;       // inside ember_parallel's body: products and shares stay on one thread
static __thread int applied_threads;  // what this thread last told OpenMP (0: not known)
static long parallel_from;  // multiply-adds from which a product shares the threads (start_engine)

static pthread_key_t thread_cache;
static void drop_thread_cache(void *table);

static void start_engine(void) {
    engine_ok = dnnl_engine_create(&ember_engine, dnnl_cpu, 0) == dnnl_success;
    pthread_key_create(&thread_cache, drop_thread_cache);
    // libgomp comes with libdnnl; found at run time so the build needs no OpenMP development files.
    set_omp_threads = (void (*)(int))dlsym(RTLD_DEFAULT, "omp_set_num_threads");
    gomp_parallel = (void (*)(void (*)(void *), void *, unsigned, unsigned))dlsym(RTLD_DEFAULT, "GOMP_parallel");
    omp_thread_num = (int (*)(void))dlsym(RTLD_DEFAULT, "omp_get_thread_num");
    omp_num_threads = (int (*)(void))dlsym(RTLD_DEFAULT, "omp_get_num_threads");
    const char *from = getenv("EMBER_PRODUCT_PARALLEL_FROM");
    parallel_from = from && *from ? atol(from) : 1l << 20;
}

int ember_products_available(void) {
    pthread_once(&engine_once, start_engine);
    return engine_ok;
}

const char *ember_products_isa(void) {
    switch (dnnl_get_effective_cpu_isa()) {
    case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
    case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core: return "avx512_core";
    case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni";
    case dnnl_cpu_isa_avx2: return "avx2";
    case dnnl_cpu_isa_avx: return "avx";
    case dnnl_cpu_isa_sse41: return "sse41";
    default: return "baseline";
    }
}

// CPUID leaf 7: AVX2 (EBX 5), AVX-512 F/DQ/BW/VL (EBX 16, 17, 30, 31), AMX-BF16 (EDX 22);
// sub-leaf 1: AVX512_BF16 (EAX 5). The OS must also save the vector state (XGETBV), which
// oneDNN checks too; a VM that hides AVX-512 clears its CPUID bits as well.
const char *ember_cpu_isa(void) {
#if defined(__x86_64__)
    unsigned a, b, c, d, a1 = 0, b1, c1, d1;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return "baseline";
    __get_cpuid_count(7, 1, &a1, &b1, &c1, &d1);
    int avx512 = (b >> 16 & 1) && (b >> 17 & 1) && (b >> 30 & 1) && (b >> 31 & 1);
    if (avx512 && (d >> 22 & 1)) return "avx512_core_amx";
    if (avx512 && (a1 >> 5 & 1)) return "avx512_core_bf16";
    if (avx512) return "avx512_core";
    if (b >> 5 & 1) return "avx2";
    return __builtin_cpu_supports("sse4.1") ? "sse41" : "baseline";
#else
    return "baseline";
#endif
}

static char version_text[32];
static void write_version(void) {
    const dnnl_version_t *v = dnnl_version();
    snprintf(version_text, sizeof version_text, "%d.%d.%d", v->major, v->minor, v->patch);
}

const char *ember_products_version(void) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, write_version);
    return version_text;
}

static atomic_int threads_chosen;  // set by ember_products_set_threads: suggestions no longer apply

void ember_products_set_threads(int threads) {
    atomic_store(&threads_chosen, 1);
    atomic_store(&wanted_threads, threads < 1 ? 1 : threads);
}

int ember_products_suggest_threads(int threads) {
    if (atomic_load(&threads_chosen)) return 0;
    atomic_store(&wanted_threads, threads < 1 ? 1 : threads);
    return 1;
}

// Until a count is set, OpenBLAS's own (OPENBLAS_NUM_THREADS, OMP_NUM_THREADS, else the cores),
// so a program that never sets one runs both libraries at the same count.
static int configured_threads(void) {
    int want = atomic_load_explicit(&wanted_threads, memory_order_relaxed);
    if (want) return want;
    int (*blas_threads)(void) = (int (*)(void))dlsym(RTLD_DEFAULT, "openblas_get_num_threads");
    int found = blas_threads ? blas_threads() : 1, unset = 0;
    atomic_compare_exchange_strong(&wanted_threads, &unset, found < 1 ? 1 : found);
    return atomic_load(&wanted_threads);
}


enum { SLOTS = 512 };  // a power of two; the table is emptied when half full
static __thread product *table;
static __thread int used;
static __thread dnnl_stream_t stream;
static __thread long created;
// Per-thread scratch for the rounded operands, grown as needed and kept.
static __thread uint16_t *scratch[2];
static __thread long scratch_count[2];
static __thread const char *last_kernel = "none";

long ember_products_created(void) { return created; }
const char *ember_products_last_kernel(void) { return last_kernel; }

static unsigned long hash(const long *key) {
    unsigned long h = 1469598103934665603ul;
    for (int i = 0; i < EMBER_KEY; i++) h = (h ^ (unsigned long)key[i]) * 1099511628211ul;
    return h;
}

static void empty_table(void) {
    for (int i = 0; i < SLOTS; i++) {
        if (!table[i].primitive) continue;
        dnnl_primitive_destroy(table[i].primitive);
        dnnl_memory_destroy(table[i].a);
        if (table[i].b) dnnl_memory_destroy(table[i].b);
        dnnl_memory_destroy(table[i].c);
    }
    memset(table, 0, sizeof(product) * SLOTS);
    used = 0;
}

// A matrix [rows, cols] stored row-major with leading dimension ld, or transposed in storage.
dnnl_status_t ember_matrix_desc(dnnl_memory_desc_t *md, long rows, long cols, long ld, int transposed, dnnl_data_type_t type) {
    dnnl_dims_t dims = {rows, cols};
    dnnl_dims_t strides = {transposed ? 1 : ld, transposed ? ld : 1};
    return dnnl_memory_desc_init_by_strides(md, 2, dims, type, strides);
}

static dnnl_primitive_attr_t attributes(float alpha, float beta) {
    dnnl_primitive_attr_t attr;
    if (dnnl_primitive_attr_create(&attr) != dnnl_success) return NULL;
    if (alpha != 1) dnnl_primitive_attr_set_output_scales(attr, 1, 0, &alpha);
    if (beta != 0) {
        dnnl_post_ops_t ops;
        dnnl_post_ops_create(&ops);
        dnnl_post_ops_append_sum(ops, beta);
        dnnl_primitive_attr_set_post_ops(attr, ops);
        dnnl_post_ops_destroy(ops);
    }
    return attr;
}

// Makes the primitive and its three memory objects for one shape; 0 on success. A packed
// product (key[11]) lets oneDNN choose B's layout (`ember_pack_weight_bf16` lays a weight out in it).
static int make(product *p, const long *key, float alpha, float beta) {
    long ta = key[0], tb = key[1], m = key[2], n = key[3], k = key[4];
    dnnl_data_type_t in = key[10] ? dnnl_bf16 : dnnl_f32;  // operands; the result is float32 either way
    dnnl_memory_desc_t a, b, c;
    if (ember_matrix_desc(&a, m, k, key[5], (int)ta, in) || ember_matrix_desc(&b, k, n, key[6], (int)tb, in) || ember_matrix_desc(&c, m, n, key[7], 0, dnnl_f32)) return -1;
    if (key[11]) {
        dnnl_dims_t dims = {k, n};
        if (dnnl_memory_desc_init_by_tag(&b, 2, dims, in, dnnl_format_tag_any) != dnnl_success) return -1;
    }
    dnnl_matmul_desc_t desc;
    if (dnnl_matmul_desc_init(&desc, &a, &b, NULL, &c) != dnnl_success) return -1;
    ember_apply_threads((int)key[12]);
    dnnl_primitive_attr_t attr = attributes(alpha, beta);
    dnnl_primitive_desc_t pd;
    dnnl_status_t status = dnnl_primitive_desc_create(&pd, &desc, attr, ember_engine, NULL);
    dnnl_primitive_attr_destroy(attr);
    if (status != dnnl_success) return -1;
    dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &last_kernel);
    status = dnnl_primitive_create(&p->primitive, pd);
    dnnl_primitive_desc_destroy(pd);
    if (status != dnnl_success) return -1;
    dnnl_memory_create(&p->a, &a, ember_engine, DNNL_MEMORY_NONE);
    if (!key[11]) dnnl_memory_create(&p->b, &b, ember_engine, DNNL_MEMORY_NONE);
    dnnl_memory_create(&p->c, &c, ember_engine, DNNL_MEMORY_NONE);
    memcpy(p->key, key, sizeof p->key);
    created++;
    return 0;
}

// A thread that ends takes its products with it (ranks as threads, pool workers).
static void drop_thread_cache(void *unused) {
    (void)unused;
    empty_table();
    free(table);
    table = NULL;
    if (stream) dnnl_stream_destroy(stream);
    stream = NULL;
    for (int i = 0; i < 2; i++) { free(scratch[i]); scratch[i] = NULL; scratch_count[i] = 0; }
}

// The calling thread's product for this shape, made on first use; NULL when oneDNN cannot.
product *ember_product_lookup(const long *key, float alpha, float beta) {
    if (!table) {
        if (!(table = calloc(SLOTS, sizeof(product)))) return NULL;
        pthread_setspecific(thread_cache, table);
    }
    if (used >= SLOTS / 2) empty_table();
    unsigned long i = hash(key) & (SLOTS - 1);
    for (; table[i].primitive; i = (i + 1) & (SLOTS - 1))
        if (memcmp(table[i].key, key, sizeof table[i].key) == 0) return &table[i];
    if (make(&table[i], key, alpha, beta) != 0) return NULL;
    used++;
    return &table[i];
}

// The calling thread's oneDNN stream, made on first use; NULL when oneDNN cannot.
dnnl_stream_t ember_thread_stream(void) {
    if (!stream && dnnl_stream_create(&stream, ember_engine, dnnl_stream_default_flags) != dnnl_success) stream = NULL;
    return stream;
}

// Below 2^20 multiply-adds (about 5 µs of one core's work) a product runs on one thread:
// oneDNN would split even a 64×64×32 product over every thread, whose start and join then
// cost more than the halved arithmetic saves, and in the minutes a shared host is slow to
// bring the other core in, twice a step's time (LeNet at 2 threads: 17.5k samples/s with every
// product shared, 33.8k with this limit; 35.4k against 33.3k when the host behaves).
// `EMBER_PRODUCT_PARALLEL_FROM` (multiply-adds) sets another limit: 0 shares every product.
// Read when the engine starts, which every product's caller has made sure of.
int ember_product_threads(long m, long n, long k) {
    int want = ember_wanted_threads();
    return want > 1 && (double)m * (double)n * (double)k < (double)parallel_from ? 1 : want;
}

int ember_wanted_threads(void) { return in_team ? 1 : configured_threads(); }

typedef struct {
    void (*body)(void *, int, int);
    void *data;
} team_work;
// A member's products run on one thread, and its OpenMP setting starts as the caller's, not as
// this thread last left it: it tells OpenMP again before its first product.
static void run_member(void *work) {
    team_work *w = work;
    int applied = applied_threads;
    in_team = 1;
    applied_threads = 0;
    w->body(w->data, omp_thread_num(), omp_num_threads());
    in_team = 0;
    applied_threads = applied;
}

void ember_parallel(int threads, void (*body)(void *data, int member, int members), void *data) {
    pthread_once(&engine_once, start_engine);
    if (threads < 2 || in_team || !gomp_parallel || !omp_thread_num || !omp_num_threads) return body(data, 0, 1);
    team_work work = {body, data};
    gomp_parallel(run_member, &work, (unsigned)threads, 0);
}

void ember_apply_threads(int threads) {
    if (threads == applied_threads || !set_omp_threads) return;
    set_omp_threads(threads);
    applied_threads = threads;
}

// C = alpha·op(A)·op(B) + beta·C with operands of the given precision (a, b float32 or bfloat16).
int ember_run_product(int trans_a, int trans_b, long m, long n, long k, float alpha, const void *a, long lda,
                       const void *b, long ldb, float beta, float *c, long ldc, int bf16) {
    if (k <= 0 || !ember_products_available()) return -1;
    uint32_t alpha_bits, beta_bits;
    memcpy(&alpha_bits, &alpha, 4);
    memcpy(&beta_bits, &beta, 4);
    int threads = ember_product_threads(m, n, k);
    long key[EMBER_KEY] = {trans_a != 0, trans_b != 0, m, n, k, lda, ldb, ldc, alpha_bits, beta_bits, bf16, 0, threads};
    product *p = ember_product_lookup(key, alpha, beta);
    if (!p || !ember_thread_stream()) return -1;
    ember_apply_threads(threads);
    dnnl_memory_set_data_handle(p->a, (void *)a);
    dnnl_memory_set_data_handle(p->b, (void *)b);
    dnnl_memory_set_data_handle(p->c, c);
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, p->a}, {DNNL_ARG_WEIGHTS, p->b}, {DNNL_ARG_DST, p->c}};
    return dnnl_primitive_execute(p->primitive, stream, 3, args) == dnnl_success ? 0 : -1;
}

int ember_sgemm(int trans_a, int trans_b, long m, long n, long k, float alpha, const float *a, long lda,
                const float *b, long ldb, float beta, float *c, long ldc) {
    return ember_run_product(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, 0);
}

uint16_t *ember_scratch(int which, long count) {
    if (scratch_count[which] < count) {
        free(scratch[which]);
        scratch[which] = aligned_alloc(64, (size_t)((count * 2 + 63) / 64 * 64));
        scratch_count[which] = scratch[which] ? count : 0;
    }
    return scratch[which];
}
