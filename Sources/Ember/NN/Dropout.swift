/// Zeroes each element with probability `p` in training and scales the rest by `1/(1-p)`, like
/// `torch.nn.Dropout`; the identity in evaluation.
public class Dropout: Module {
    public let p: Double
    let generator: Generator

    public init(p: Double = 0.5, generator: Generator = .default) {
        require(p >= 0 && p <= 1, "Dropout: probability p must be between 0 and 1, got \(p)")
        self.p = p
        self.generator = generator
        super.init()
    }

    /// The shape of the random keep-mask (the input's: every element on its own).
    func maskShape(_ x: Tensor) -> [Int] { x.shape }

    public override func forward(_ x: Tensor) -> Tensor {
        guard isTraining && p > 0 else { return x }
        if p == 1 { return x * 0 }
        let keep = Tensor.rand(maskShape(x), dtype: x.dtype, generator: generator).ge(p) / Float(1 - p)
        return x * keep
    }
}

/// Zeroes whole channels of `[N, C, H, W]` (or `[N, C, L]`) with probability `p`, like
/// `torch.nn.Dropout2d`.
public final class Dropout2d: Dropout {
    override func maskShape(_ x: Tensor) -> [Int] {
        require(x.rank >= 3, "Dropout2d expects [N, C, H, W] or [N, C, L], got \(x.shape)")
        return [x.shape[0], x.shape[1]] + [Int](repeating: 1, count: x.rank - 2)
    }
}
