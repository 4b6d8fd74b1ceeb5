#ifndef EMBER_CMPI_SHIM_H
#define EMBER_CMPI_SHIM_H
#include <mpi.h>

// MPI's handles are macros (often casts of global symbols) that Swift cannot import;
// these inline functions hand them over as values.
static inline MPI_Comm ember_mpi_comm_world(void) { return MPI_COMM_WORLD; }
static inline MPI_Datatype ember_mpi_float(void) { return MPI_FLOAT; }
static inline MPI_Datatype ember_mpi_double(void) { return MPI_DOUBLE; }
static inline MPI_Datatype ember_mpi_int(void) { return MPI_INT; }
static inline MPI_Datatype ember_mpi_byte(void) { return MPI_BYTE; }
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

#endif
