#include "CEmberSupport.h"
#include "Clones.h"
#include <sched.h>
#include <string.h>

// Collectives between processes that map the same memory (ranks of one node). Each rank has a
// counter on its own cache line; a barrier publishes the rank's epoch with release order and
// waits, with acquire order, until every counter has reached it, so everything written before a
// barrier is visible after it.

void ember_shm_barrier(int *counters, int rank, int world, int epoch, long spin_limit) {
    __atomic_store_n(&counters[rank * EMBER_SHM_COUNTER_STRIDE], epoch, __ATOMIC_RELEASE);
    for (int r = 0; r < world; r++) {
        // Spin up to `spin_limit` times, then yield: with more ranks than cores the rank being
        // waited for may need this core.
        // Serial-number comparison: still right when the epoch wraps around.
        for (long spins = 0; (int)((unsigned)__atomic_load_n(&counters[r * EMBER_SHM_COUNTER_STRIDE], __ATOMIC_ACQUIRE) - (unsigned)epoch) < 0;
             spins++) {
            if (spins < spin_limit) {
#if defined(__x86_64__)
                __builtin_ia32_pause();
#endif
            } else {
                sched_yield();
            }
        }
    }
}


// out[i] = a[i] + b[i], where `out` may be `a` or `b` exactly (never overlapping partly), which is
// why vectorising is safe; the compiler, unable to prove it, emitted scalar adds (30 µs instead
// of 6 for a two-rank mlp's shard).
#define EMBER_ADD_LOOP(out, a, b, start, end)                                                      \
    _Pragma("clang loop vectorize(assume_safety)")                                                \
    for (long i = (start); i < (end); i++) (out)[i] = (a)[i] + (b)[i];

#define EMBER_ADD(NAME, T)                                                                        \
    EMBER_CLONES void NAME(T *out, const T *a, const T *b, long n) { EMBER_ADD_LOOP(out, a, b, 0, n) }
EMBER_ADD(ember_add_f32, float)
EMBER_ADD(ember_add_f64, double)

// out[i] = inputs[0][i] + inputs[1][i] + ... in rank order, so the owner of a shard computes the
// same bits whichever rank it is. `out` may be one of the inputs.
#define EMBER_SUM(NAME, T)                                                                        \
    EMBER_CLONES void NAME(T *out, T *const *inputs, int count, long n) {                         \
        if (count == 1) {                                                                         \
            if (out != inputs[0]) memmove(out, inputs[0], (size_t)n * sizeof(T));                 \
            return;                                                                               \
        }                                                                                         \
        if (count == 2) {                                                                         \
            EMBER_ADD_LOOP(out, inputs[0], inputs[1], 0, n)                                       \
            return;                                                                               \
        }                                                                                         \
        /* Rank by rank over blocks that stay in L1 (the same order of additions per element), */ \
        /* summed aside: `out` is one of the inputs, still to be read. */                          \
        T block[1024];                                                                            \
        for (long start = 0; start < n; start += 1024) {                                          \
            long m = n - start < 1024 ? n - start : 1024;                                         \
            EMBER_ADD_LOOP(block, inputs[0] + start, inputs[1] + start, 0, m)                     \
            for (int r = 2; r < count; r++) { EMBER_ADD_LOOP(block, block, inputs[r] + start, 0, m) } \
            memcpy(out + start, block, (size_t)m * sizeof(T));                                    \
        }                                                                                         \
    }
EMBER_SUM(ember_sum_f32, float)
EMBER_SUM(ember_sum_f64, double)

// Heartbeats: words other processes read while this one may be writing them.
void ember_store_u64(unsigned long long *p, unsigned long long v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
unsigned long long ember_load_u64(const unsigned long long *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
