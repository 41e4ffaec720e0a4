// The conversion kernels compiled for the portable path; flags come from src/numerics/CMakeLists.txt.
#define DOJO_KERNEL_NAMESPACE portable
#define DOJO_KERNEL_TABLE_FUNCTION portable_kernels
#define DOJO_KERNEL_VECTOR_BYTES 16
#include "encode_kernel.inc"
