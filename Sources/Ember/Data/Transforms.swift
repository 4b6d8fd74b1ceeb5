/// A per-sample transform of an input tensor.
public protocol Transform {
    func callAsFunction(_ x: Tensor) -> Tensor
    /// The transform applied to every sample of a stacked batch (default: sample by sample).
    func batch(_ x: Tensor) -> Tensor
}

extension Transform {
    public func batch(_ x: Tensor) -> Tensor {
        Tensor.stack((0..<x.shape[0]).map { self(x[$0]) })
    }
}

/// Several transforms in order.
public struct Compose: Transform {
    public let transforms: [Transform]
    public init(_ transforms: [Transform]) { self.transforms = transforms }
    public func callAsFunction(_ x: Tensor) -> Tensor { transforms.reduce(x) { $1($0) } }
    public func batch(_ x: Tensor) -> Tensor { transforms.reduce(x) { $1.batch($0) } }
}

/// `(x - mean) / std`, per feature (mean and std of the sample's shape, or broadcastable to it).
public struct Normalize: Transform {
    public let mean: Tensor, std: Tensor

    public init(mean: Tensor, std: Tensor) {
        self.mean = mean
        self.std = std
    }

    public init(mean: Double, std: Double) {
        self.init(mean: Tensor(scalar: mean), std: Tensor(scalar: std))
    }

    /// Mean and standard deviation of each feature over `inputs` `[N, ...]`; constant features
    /// get a std of 1 so they map to 0 instead of NaN.
    public static func fit(_ inputs: Tensor) -> Normalize {
        noGrad {
            let mean = inputs.mean(dim: 0)
            let std = inputs.std(dim: 0, correction: 0)
            return Normalize(mean: mean, std: Tensor.where(std.gt(1e-8), std, Tensor.onesLike(std)))
        }
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { noGrad { (x - mean) / std } }
    public func batch(_ x: Tensor) -> Tensor { noGrad { (x - mean) / std } }
}

/// Flattens each sample to a vector.
public struct FlattenTransform: Transform {
    public init() {}
    public func callAsFunction(_ x: Tensor) -> Tensor { x.flatten() }
    public func batch(_ x: Tensor) -> Tensor { x.flatten(startDim: 1) }
}

/// Pads an image `[C, H, W]` with zeros and crops a random `size` window, like
/// `torchvision.transforms.RandomCrop(size, padding)`.
public struct RandomCrop: Transform {
    public let size: (Int, Int), padding: Int
    let generator: Generator

    public init(size: (Int, Int), padding: Int = 0, generator: Generator = .default) {
        self.size = size
        self.padding = padding
        self.generator = generator
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        require(x.rank == 3, "RandomCrop expects an image [C, H, W], got \(x.shape)")
        let (h, w) = (x.shape[1] + 2 * padding, x.shape[2] + 2 * padding)
        require(size.0 <= h && size.1 <= w, "RandomCrop size \(size) is larger than the padded image \(h)x\(w)")
        var padded = x
        if padding > 0 {
            // Zero padding by placing the image into a zero canvas (narrow's adjoint).
            padded = x.unnarrow(dim: 1, start: padding, size: h).unnarrow(dim: 2, start: padding, size: w)
        }
        let top = generator.integers(1, low: 0, high: h - size.0 + 1)[0]
        let left = generator.integers(1, low: 0, high: w - size.1 + 1)[0]
        return padded.narrow(dim: 1, start: top, length: size.0).narrow(dim: 2, start: left, length: size.1)
    }
}

/// Mirrors an image `[C, H, W]` left-right with probability `p`.
public struct RandomHorizontalFlip: Transform {
    public let p: Double
    let generator: Generator

    public init(p: Double = 0.5, generator: Generator = .default) {
        self.p = p
        self.generator = generator
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        guard generator.uniform(1)[0] < p else { return x }
        let w = x.shape[x.rank - 1]
        return x.indexSelect(dim: x.rank - 1, index: Tensor(indices: Array((0..<w).reversed())))
    }
}
