// How fast this core multiplies float32 matrices through OpenBLAS, one thread, on the shapes of
// the gpt and lstm benchmarks and on a large square product: the ceiling for any trainer that
// spends its step in these products (docs/benchmarks.md).
//
//   gcc -O2 scripts/gemm_peak.c -o /tmp/gemm_peak $(pkg-config --cflags --libs openblas)
//   env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OPENBLAS_NUM_THREADS=1 /tmp/gemm_peak
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(void) {
    // m, n, k, B transposed (a weight used as nn.Linear does), what it is.
    struct { int m, n, k, transB; const char *what; } shapes[] = {
        {2048, 2048, 2048, 0, "large square"},
        {2048, 384, 128, 1, "gpt: QKV projection"},
        {2048, 512, 128, 1, "gpt: MLP up"},
        {2048, 128, 512, 1, "gpt: MLP down"},
        {64, 64, 32, 1, "gpt: one head's scores"},
        {32, 1024, 256, 1, "lstm: one step's recurrent product"},
        {32, 256, 1024, 0, "lstm: its gradient"},
    };
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int m = shapes[s].m, n = shapes[s].n, k = shapes[s].k, tb = shapes[s].transB;
        float *a = malloc(sizeof(float) * m * k), *b = malloc(sizeof(float) * k * n), *c = malloc(sizeof(float) * m * n);
        for (long i = 0; i < (long)m * k; i++) a[i] = rand() / (float)RAND_MAX;
        for (long i = 0; i < (long)k * n; i++) b[i] = rand() / (float)RAND_MAX;
        int reps = (int)(4e9 / (2.0 * m * n * k));
        if (reps < 3) reps = 3;
        for (int r = 0; r < 3; r++)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k, 1, a, k, b, tb ? k : n, 0, c, n);
        double t = now();
        for (int r = 0; r < reps; r++)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k, 1, a, k, b, tb ? k : n, 0, c, n);
        t = now() - t;
        printf("%5d x %4d x %4d %-36s %6.1f GFLOP/s\n", m, n, k, shapes[s].what, 2.0 * m * n * k * reps / t / 1e9);
        free(a);
        free(b);
        free(c);
    }
    return 0;
}
