#ifndef EMBER_CMPI_SHIM_H
#define EMBER_CMPI_SHIM_H
#include <mpi.h>
#include <stdint.h>
#include <string.h>

// MPI's handles are macros (often casts of global symbols) that Swift cannot import;
// these inline functions hand them over as values.
static inline MPI_Comm ember_mpi_comm_world(void) { return MPI_COMM_WORLD; }
static inline MPI_Datatype ember_mpi_float(void) { return MPI_FLOAT; }
static inline MPI_Datatype ember_mpi_double(void) { return MPI_DOUBLE; }
static inline MPI_Datatype ember_mpi_int(void) { return MPI_INT; }
static inline MPI_Datatype ember_mpi_byte(void) { return MPI_BYTE; }
static inline MPI_Datatype ember_mpi_uint16(void) { return MPI_UINT16_T; }
static inline MPI_Op ember_mpi_sum(void) { return MPI_SUM; }
static inline MPI_Op ember_mpi_max(void) { return MPI_MAX; }
static inline MPI_Op ember_mpi_min(void) { return MPI_MIN; }
static inline void *ember_mpi_in_place(void) { return MPI_IN_PLACE; }
static inline int ember_mpi_thread_serialized(void) { return MPI_THREAD_SERIALIZED; }
static inline int ember_mpi_success(void) { return MPI_SUCCESS; }
static inline MPI_Status *ember_mpi_status_ignore(void) { return MPI_STATUS_IGNORE; }
static inline MPI_Info ember_mpi_info_null(void) { return MPI_INFO_NULL; }
static inline int ember_mpi_comm_type_shared(void) { return MPI_COMM_TYPE_SHARED; }
static inline MPI_Errhandler ember_mpi_errors_return(void) { return MPI_ERRORS_RETURN; }

// bfloat16 sums (`--reduce-dtype bf16`): each arriving value is added in float32 and the sum
// rounded back to bfloat16 (nearest, ties to even; NaN stays NaN), as NCCL sums bfloat16.
static void ember_bf16_sum(void *in, void *inout, int *len, MPI_Datatype *type) {
    (void)type;
    const uint16_t *a = (const uint16_t *)in;
    uint16_t *b = (uint16_t *)inout;
    for (int i = 0; i < *len; i++) {
        uint32_t x = (uint32_t)a[i] << 16, y = (uint32_t)b[i] << 16, s;
        float fx, fy, fs;
        memcpy(&fx, &x, 4);
        memcpy(&fy, &y, 4);
        fs = fx + fy;
        memcpy(&s, &fs, 4);
        uint16_t r = (uint16_t)((s + 0x7fffu + ((s >> 16) & 1u)) >> 16);
        b[i] = (s & 0x7fffffffu) > 0x7f800000u ? 0x7fc0 : r;
    }
}

/// Creates the bfloat16 sum (commutative) for MPI_UINT16_T buffers.
static inline int ember_mpi_bf16_sum_create(MPI_Op *op) { return MPI_Op_create(ember_bf16_sum, 1, op); }

#endif
