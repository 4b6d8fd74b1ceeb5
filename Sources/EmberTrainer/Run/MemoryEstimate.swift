import Foundation

/// What a language model's training step needs in memory, estimated from its options before
/// anything is allocated, so sizes a machine cannot hold are refused with one line instead of an
/// allocation failure or a swap storm.
enum MemoryEstimate {
    /// Bytes of one rank's float32 training: weights, gradients and two Adam moments, and the
    /// activations a step keeps for backward (attention's scores and probabilities included),
    /// for a vocabulary of at most `vocabulary` tokens.
    static func languageModelStep(_ c: TrainerConfig, vocabulary: Double = 256) -> Double {
        let (b, t, e, l) = (Double(c.batchSize), Double(c.blockSize), Double(c.nEmbd), Double(c.nLayer))
        let parameters: Double, activations: Double
        switch c.model {
        case .lstm:
            let h = Double(c.hiddenSize)
            parameters = vocabulary * e + 4 * (e * h + h * h + 2 * h) * l + h * vocabulary
            activations = b * t * (e + 10 * h * l)
        default:
            parameters = vocabulary * e + t * e + 12 * e * e * l
            activations = b * t * e * 16 * l + b * Double(c.nHead) * t * t * 3 * l
        }
        let logits = b * t * vocabulary * 3
        return 4 * (4 * parameters + activations + logits)
    }

    /// Throws naming the sizes when a step would need more than this machine's memory.
    static func check(_ c: TrainerConfig) throws {
        guard c.model.isLanguageModel, c.model != .pretrained else { return }
        let need = languageModelStep(c), have = Double(ProcessInfo.processInfo.physicalMemory)
        guard need > have * 0.8 else { return }
        let widths = c.model == .lstm ? "--n-embd \(c.nEmbd), --hidden-size \(c.hiddenSize)" : "--n-embd \(c.nEmbd), --n-head \(c.nHead)"
        throw ConfigError(String(format: "--model %@ with --block-size %d, --batch-size %d, %@, --n-layer %d needs about %.1f GB for a training step, more than this machine's %.1f GB: lower one of them",
                                 c.model.rawValue, c.blockSize, c.batchSize, widths, c.nLayer, need / 1e9, have / 1e9))
    }
}
