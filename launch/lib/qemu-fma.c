// Preloaded into qemu-x86_64 (never into the emulated program) by launch/lib/qemu.sh.
//
// qemu's TCG runs the emulated CPU's AVX2 code on the host's ymm registers and then calls its
// softfloat helpers, plain SSE code, with their upper halves still in use. On an Intel host that
// costs every such switch a stall: measured on an Emerald Rapids VM, 170 ns per SSE instruction
// after a ymm one, and an emulated Haswell's FMA lane took 170 ns where a Nehalem's multiply and
// add took 8. An AMD host does not stall. qemu's FMA helper calls the host's fmaf/fma for each
// lane: these versions clear the upper halves first (vzeroupper; the ABI lets a callee clobber
// them), and the Haswell unit tests run 6x faster there (1,386 s before), as fast as on AMD.
#if defined(__x86_64__)
__asm__(".globl fmaf\n.type fmaf, @function\nfmaf:\n"
        "  vzeroupper\n  vfmadd132ss %xmm1, %xmm2, %xmm0\n  ret\n.size fmaf, .-fmaf\n"
        ".globl fma\n.type fma, @function\nfma:\n"
        "  vzeroupper\n  vfmadd132sd %xmm1, %xmm2, %xmm0\n  ret\n.size fma, .-fma\n");
#endif
