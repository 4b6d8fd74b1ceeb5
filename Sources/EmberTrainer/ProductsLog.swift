import Ember
import Logging

extension Trainer {
    /// Rank 0's start-up line about matrix products: which library and instructions multiply,
    /// the threads per rank, and one warning when the products run below this CPU's best.
    static func logProducts(_ log: Logger, blasCoreType: String?) {
        let threads = "\(numThreads) thread\(numThreads == 1 ? "" : "s") per rank"
        log.info("products: \(ProductEngine.description) (float64: \(ProductEngine.float64Description)), \(threads)")
        if let shortfall = ProductEngine.shortfall {
            log.warning("\(shortfall): products may run at half the speed or less (docs/benchmarks.md)")
        }
        // float64 products (gradcheck, a float64 model) still run on OpenBLAS.
        if let forced = blasCoreType {
            log.info("float64 products use OpenBLAS \(blasKernel) kernels forced by OPENBLAS_CORETYPE=\(forced); float32 is unaffected")
        }
    }
}
