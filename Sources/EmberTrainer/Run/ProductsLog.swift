import Ember
import Logging

extension Trainer {
    /// `--precision bf16` needs the CPU's bfloat16 units: without them it would be emulated,
    /// slower than float32, so the trainer refuses instead of running a silent slow path.
    static func checkPrecision(_ precision: String) throws {
        guard precision == "bf16", !Precision.bfloat16IsNative else { return }
        let cpu = ProductEngine.cpuInstructions, dnnl = ProductEngine.oneDNNInstructions
        if Precision.cpuHasBfloat16Units {
            throw ConfigError("--precision bf16: this CPU has bfloat16 units (\(cpu)) but oneDNN may use only \(dnnl) (DNNL_MAX_CPU_ISA or ONEDNN_MAX_CPU_ISA set?): unset it, or use --precision fp32")
        }
        throw ConfigError("--precision bf16 needs a CPU with bfloat16 units (AVX512_BF16 or AMX); this one offers \(cpu): use --precision fp32")
    }

    /// Rank 0's start-up line about matrix products: which library and instructions multiply,
    /// the threads per rank, and one warning when the products run below this CPU's best.
    static func logProducts(_ log: Logger, blasCoreType: String?, precision: String) {
        let threads = "\(numThreads) thread\(numThreads == 1 ? "" : "s") per rank"
        log.info("products: \(ProductEngine.description) (float64: \(ProductEngine.float64Description)), \(threads)")
        if precision == "bf16" { logBFloat16Units(log) }
        if let shortfall = ProductEngine.shortfall {
            log.warning("\(shortfall): products may run at half the speed or less (docs/benchmarks.md)")
        }
        // float64 products (gradcheck, a float64 model) still run on OpenBLAS.
        if let forced = blasCoreType {
            log.info("float64 products use OpenBLAS \(blasKernel) kernels forced by OPENBLAS_CORETYPE=\(forced); float32 is unaffected")
        }
    }

    /// Which bfloat16 units multiply and how fast against float32, measured now: a warning where
    /// bf16 is the slower choice (Intel without AMX), never a silent slow path.
    private static func logBFloat16Units(_ log: Logger) {
        let units = Precision.bfloat16Units ?? "no"
        let speedup = ProductEngine.bfloat16Speedup()
        let rate = speedup.map { String(format: "%.2f× float32's speed", $0) }
        log.info("precision: bf16 products on \(units) bfloat16 units\(rate.map { " (\($0) here)" } ?? ""), float32 accumulation, weights and optimizer state")
        if let speedup, let rate, speedup < 1 {
            log.warning("--precision bf16 is slower than fp32 on this CPU: its \(units) products run at \(rate) (on Intel cores without AMX, AVX512_BF16's dot products issue at half the rate of float32 FMAs; docs/precision.md)")
        }
    }
}
