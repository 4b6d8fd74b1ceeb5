#include "CEmberSupport.h"
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

#if defined(__x86_64__) && defined(__linux__)
#define EMBER_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define EMBER_CLONES
#endif

// out[i] = inputs[0][i] + inputs[1][i] + ... in rank order, so the owner of a shard computes the
// same bits whichever rank it is. `out` may be one of the inputs.
#define EMBER_SUM(NAME, T)                                                                        \
    EMBER_CLONES void NAME(T *out, T *const *inputs, int count, long n) {                         \
        if (count == 2) {                                                                         \
            const T *a = inputs[0], *b = inputs[1];                                               \
            for (long i = 0; i < n; i++) out[i] = a[i] + b[i];                                    \
            return;                                                                               \
        }                                                                                         \
        for (long i = 0; i < n; i++) {                                                            \
            T s = inputs[0][i];                                                                   \
            for (int r = 1; r < count; r++) s += inputs[r][i];                                    \
            out[i] = s;                                                                           \
        }                                                                                         \
    }
EMBER_SUM(ember_sum_f32, float)
EMBER_SUM(ember_sum_f64, double)
