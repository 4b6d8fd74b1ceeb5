/// 2-D convolution over `[N, C, H, W]`, like `torch.nn.Conv2d`; weight `[outC, inC/groups, kh, kw]`.
open class Conv2d: Module {
    @Parameter public var weight: Tensor
    @OptionalParameter public var bias: Tensor?
    public let inChannels: Int, outChannels: Int
    public let kernelSize: (Int, Int), stride: (Int, Int), padding: Padding, dilation: (Int, Int), groups: Int

    public init(inChannels: Int, outChannels: Int, kernelSize: (Int, Int), stride: (Int, Int) = (1, 1),
                padding: Padding = .valid, dilation: (Int, Int) = (1, 1), groups: Int = 1, bias: Bool = true,
                dtype: DType = .float32, generator: Generator = .default) {
        requireLayer("Conv2d", ("inChannels", inChannels, 1), ("outChannels", outChannels, 1), ("groups", groups, 1),
                     ("kernelSize", min(kernelSize.0, kernelSize.1), 1), ("stride", min(stride.0, stride.1), 1),
                     ("dilation", min(dilation.0, dilation.1), 1))
        if case .explicit(let ph, let pw) = padding { requireLayer("Conv2d", ("padding", min(ph, pw), 0)) }
        require(inChannels % groups == 0 && outChannels % groups == 0,
                     "Conv2d: inChannels \(inChannels) and outChannels \(outChannels) must be divisible by groups \(groups)")
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.kernelSize = kernelSize
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        self.groups = groups
        (_weight, _bias) = Init.layerParameters(weight: [outChannels, inChannels / groups, kernelSize.0, kernelSize.1], biasCount: bias ? outChannels : nil,
                                                dtype: dtype, generator: generator)
        super.init()
    }

    /// Square kernel, stride and padding given as single numbers, as PyTorch allows.
    public convenience init(inChannels: Int, outChannels: Int, kernelSize: Int, stride: Int = 1, padding: Int = 0,
                            dilation: Int = 1, groups: Int = 1, bias: Bool = true, dtype: DType = .float32,
                            generator: Generator = .default) {
        self.init(inChannels: inChannels, outChannels: outChannels, kernelSize: (kernelSize, kernelSize),
                  stride: (stride, stride), padding: .symmetric(padding), dilation: (dilation, dilation),
                  groups: groups, bias: bias, dtype: dtype, generator: generator)
    }

    open override func forward(_ x: Tensor) -> Tensor {
        require(x.rank == 4 && x.shape[1] == inChannels,
                     "Conv2d(\(inChannels) → \(outChannels)) expects input [N, \(inChannels), H, W], got \(x.shape)")
        return conv2d(x, weight: weight, bias: bias, stride: stride, padding: padding, dilation: dilation, groups: groups)
    }

    open override var extraDescription: String {
        "\(inChannels), \(outChannels), kernel_size=\(kernelSize), stride=\(stride)"
    }
}

/// 1-D convolution over `[N, C, L]`, like `torch.nn.Conv1d`; weight `[outC, inC/groups, k]`.
open class Conv1d: Module {
    @Parameter public var weight: Tensor
    @OptionalParameter public var bias: Tensor?
    public let inChannels: Int, outChannels: Int, kernelSize: Int, stride: Int, padding: Int, dilation: Int, groups: Int

    public init(inChannels: Int, outChannels: Int, kernelSize: Int, stride: Int = 1, padding: Int = 0,
                dilation: Int = 1, groups: Int = 1, bias: Bool = true, dtype: DType = .float32,
                generator: Generator = .default) {
        requireLayer("Conv1d", ("inChannels", inChannels, 1), ("outChannels", outChannels, 1), ("groups", groups, 1),
                     ("kernelSize", kernelSize, 1), ("stride", stride, 1), ("dilation", dilation, 1), ("padding", padding, 0))
        require(inChannels % groups == 0 && outChannels % groups == 0,
                "Conv1d: inChannels \(inChannels) and outChannels \(outChannels) must be divisible by groups \(groups)")
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.kernelSize = kernelSize
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        self.groups = groups
        (_weight, _bias) = Init.layerParameters(weight: [outChannels, inChannels / groups, kernelSize], biasCount: bias ? outChannels : nil,
                                                dtype: dtype, generator: generator)
        super.init()
    }

    open override func forward(_ x: Tensor) -> Tensor {
        require(x.rank == 3 && x.shape[1] == inChannels,
                     "Conv1d(\(inChannels) → \(outChannels)) expects input [N, \(inChannels), L], got \(x.shape)")
        // A 1-D convolution is a 2-D one over a height of 1.
        return conv2d(x.unsqueeze(2), weight: weight.unsqueeze(2), bias: bias, stride: (1, stride),
                      padding: .explicit(h: 0, w: padding), dilation: (1, dilation), groups: groups).squeeze(2)
    }
}

/// Transposed 2-D convolution, like `torch.nn.ConvTranspose2d`; weight `[inC, outC/groups, kh, kw]`.
open class ConvTranspose2d: Module {
    @Parameter public var weight: Tensor
    @OptionalParameter public var bias: Tensor?
    public let inChannels: Int, outChannels: Int, groups: Int
    public let kernelSize: (Int, Int), stride: (Int, Int), padding: (Int, Int), outputPadding: (Int, Int), dilation: (Int, Int)

    public init(inChannels: Int, outChannels: Int, kernelSize: Int, stride: Int = 1, padding: Int = 0,
                outputPadding: Int = 0, groups: Int = 1, bias: Bool = true, dilation: Int = 1, dtype: DType = .float32,
                generator: Generator = .default) {
        requireLayer("ConvTranspose2d", ("inChannels", inChannels, 1), ("outChannels", outChannels, 1), ("groups", groups, 1),
                     ("kernelSize", kernelSize, 1), ("stride", stride, 1), ("dilation", dilation, 1), ("padding", padding, 0),
                     ("outputPadding", outputPadding, 0))
        require(inChannels % groups == 0 && outChannels % groups == 0,
                     "ConvTranspose2d: inChannels \(inChannels) and outChannels \(outChannels) must be divisible by groups \(groups)")
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.groups = groups
        self.kernelSize = (kernelSize, kernelSize)
        self.stride = (stride, stride)
        self.padding = (padding, padding)
        self.outputPadding = (outputPadding, outputPadding)
        self.dilation = (dilation, dilation)
        // PyTorch computes fan-in from dimension 1 of this weight, i.e. (outChannels/groups)·k·k.
        (_weight, _bias) = Init.layerParameters(weight: [inChannels, outChannels / groups, kernelSize, kernelSize],
                                                biasCount: bias ? outChannels : nil, dtype: dtype, generator: generator)
        super.init()
    }

    open override func forward(_ x: Tensor) -> Tensor {
        require(x.rank == 4 && x.shape[1] == inChannels,
                     "ConvTranspose2d(\(inChannels) → \(outChannels)) expects input [N, \(inChannels), H, W], got \(x.shape)")
        let transpose = { (input: Tensor, weight: Tensor, bias: Tensor?) in
            convTranspose2d(input, weight: weight, bias: bias, stride: self.stride, padding: self.padding,
                            outputPadding: self.outputPadding, dilation: self.dilation)
        }
        guard groups > 1 else { return transpose(x, weight, bias) }
        // Each group maps its slice of the input channels to its slice of the output channels.
        let inPer = inChannels / groups, outPer = outChannels / groups
        let parts = (0..<groups).map { g in
            transpose(x.narrow(dim: 1, start: g * inPer, length: inPer), weight.narrow(dim: 0, start: g * inPer, length: inPer),
                      bias?.narrow(dim: 0, start: g * outPer, length: outPer))
        }
        return Tensor.concat(parts, dim: 1)
    }
}
