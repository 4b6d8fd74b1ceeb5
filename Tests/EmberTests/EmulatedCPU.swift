import XCTest

/// launch/test runs the unit tests again on emulated older CPUs (qemu-user, `EMBER_EMULATED_CPU`
/// set) for the kernels chosen by CPU features: clones, oneDNN's instructions, OpenBLAS's kernel.
/// A long test that exercises none of them (autograd's bookkeeping over 200,000 ops) runs
/// natively only: emulated, it took minutes of that stage and could not differ.
func skipOnEmulatedCPUs() throws {
    if let cpu = ProcessInfo.processInfo.environment["EMBER_EMULATED_CPU"] {
        throw XCTSkip("runs natively only: no kernel chosen by CPU features (emulated \(cpu))")
    }
}
