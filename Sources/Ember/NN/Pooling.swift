/// Max pooling over `[N, C, H, W]`, like `torch.nn.MaxPool2d` (stride defaults to the kernel size).
public final class MaxPool2d: Module {
    public let kernelSize: (Int, Int), stride: (Int, Int), padding: (Int, Int), dilation: (Int, Int), ceilMode: Bool

    public init(kernelSize: Int, stride: Int? = nil, padding: Int = 0, dilation: Int = 1, ceilMode: Bool = false) {
        requireLayer("MaxPool2d", ("kernelSize", kernelSize, 1), ("stride", stride ?? kernelSize, 1), ("padding", padding, 0), ("dilation", dilation, 1))
        require(2 * padding <= kernelSize, "MaxPool2d: padding should be at most half of kernel size, got padding \(padding) for kernel \(kernelSize)")
        self.kernelSize = (kernelSize, kernelSize)
        self.stride = (stride ?? kernelSize, stride ?? kernelSize)
        self.padding = (padding, padding)
        self.dilation = (dilation, dilation)
        self.ceilMode = ceilMode
        super.init()
    }

    public override func forward(_ x: Tensor) -> Tensor {
        x.maxPool2d(kernelSize: kernelSize, stride: stride, padding: padding, dilation: dilation, ceilMode: ceilMode)
    }
}

/// Average pooling over `[N, C, H, W]`, like `torch.nn.AvgPool2d`.
public final class AvgPool2d: Module {
    public let kernelSize: (Int, Int), stride: (Int, Int), padding: (Int, Int), countIncludePad: Bool

    public init(kernelSize: Int, stride: Int? = nil, padding: Int = 0, countIncludePad: Bool = true) {
        requireLayer("AvgPool2d", ("kernelSize", kernelSize, 1), ("stride", stride ?? kernelSize, 1), ("padding", padding, 0))
        require(2 * padding <= kernelSize, "AvgPool2d: padding should be at most half of kernel size, got padding \(padding) for kernel \(kernelSize)")
        self.kernelSize = (kernelSize, kernelSize)
        self.stride = (stride ?? kernelSize, stride ?? kernelSize)
        self.padding = (padding, padding)
        self.countIncludePad = countIncludePad
        super.init()
    }

    public override func forward(_ x: Tensor) -> Tensor {
        x.avgPool2d(kernelSize: kernelSize, stride: stride, padding: padding, countIncludePad: countIncludePad)
    }
}

/// Average pooling to a fixed output size, like `torch.nn.AdaptiveAvgPool2d`.
public final class AdaptiveAvgPool2d: Module {
    public let outputSize: (Int, Int)

    public init(outputSize: (Int, Int)) {
        requireLayer("AdaptiveAvgPool2d", ("outputSize", min(outputSize.0, outputSize.1), 1))
        self.outputSize = outputSize
        super.init()
    }

    public convenience init(outputSize: Int) { self.init(outputSize: (outputSize, outputSize)) }

    public override func forward(_ x: Tensor) -> Tensor { x.adaptiveAvgPool2d(outputSize) }
}
/// Max pooling over `[N, C, L]` (or `[C, L]`), like `torch.nn.MaxPool1d` (stride defaults to
/// the kernel size): the 2-D pooling of a height-1 image, so forward and backward are shared.
public final class MaxPool1d: Module {
    public let kernelSize: Int, stride: Int, padding: Int, dilation: Int, ceilMode: Bool

    public init(kernelSize: Int, stride: Int? = nil, padding: Int = 0, dilation: Int = 1, ceilMode: Bool = false) {
        requireLayer("MaxPool1d", ("kernelSize", kernelSize, 1), ("stride", stride ?? kernelSize, 1), ("padding", padding, 0), ("dilation", dilation, 1))
        require(2 * padding <= kernelSize, "MaxPool1d: padding should be at most half of kernel size, got padding \(padding) for kernel \(kernelSize)")
        (self.kernelSize, self.stride, self.padding, self.dilation, self.ceilMode) = (kernelSize, stride ?? kernelSize, padding, dilation, ceilMode)
        super.init()
    }

    public override func forward(_ x: Tensor) -> Tensor {
        x.maxPool1d(kernelSize: kernelSize, stride: stride, padding: padding, dilation: dilation, ceilMode: ceilMode)
    }
}

/// Average pooling over `[N, C, L]` (or `[C, L]`), like `torch.nn.AvgPool1d`.
public final class AvgPool1d: Module {
    public let kernelSize: Int, stride: Int, padding: Int, countIncludePad: Bool

    public init(kernelSize: Int, stride: Int? = nil, padding: Int = 0, countIncludePad: Bool = true) {
        requireLayer("AvgPool1d", ("kernelSize", kernelSize, 1), ("stride", stride ?? kernelSize, 1), ("padding", padding, 0))
        require(2 * padding <= kernelSize, "AvgPool1d: padding should be at most half of kernel size, got padding \(padding) for kernel \(kernelSize)")
        (self.kernelSize, self.stride, self.padding, self.countIncludePad) = (kernelSize, stride ?? kernelSize, padding, countIncludePad)
        super.init()
    }

    public override func forward(_ x: Tensor) -> Tensor {
        x.avgPool1d(kernelSize: kernelSize, stride: stride, padding: padding, countIncludePad: countIncludePad)
    }
}

/// Pooling to a fixed length, `torch.nn.AdaptiveAvgPool1d` or `AdaptiveMaxPool1d` by its subclass.
public class AdaptivePool1d: Module {
    public let outputSize: Int
    private let pool: (Tensor, Int) -> Tensor

    init(_ layer: String, outputSize: Int, pool: @escaping (Tensor, Int) -> Tensor) {
        requireLayer(layer, ("outputSize", outputSize, 1))
        self.outputSize = outputSize
        self.pool = pool
        super.init()
    }

    public override func forward(_ x: Tensor) -> Tensor { pool(x, outputSize) }
}

/// Average pooling to a fixed length, like `torch.nn.AdaptiveAvgPool1d`.
public final class AdaptiveAvgPool1d: AdaptivePool1d {
    public init(outputSize: Int) { super.init("AdaptiveAvgPool1d", outputSize: outputSize) { $0.adaptiveAvgPool1d($1) } }
}

/// Max pooling to a fixed length, like `torch.nn.AdaptiveMaxPool1d`.
public final class AdaptiveMaxPool1d: AdaptivePool1d {
    public init(outputSize: Int) { super.init("AdaptiveMaxPool1d", outputSize: outputSize) { $0.adaptiveMaxPool1d($1) } }
}
