/// Convolutions as im2col + matrix product: `im2col` and `col2im` are each other's gradient and
/// the product is an ordinary (differentiable) matmul, so convolutions need no backward of their own.
extension Tensor {
    /// `[N, C, H, W]` → `[C·kh·kw, N·oh·ow]`: every window of every sample as a column
    /// (PyTorch's `unfold`, with the batch folded into the columns).
    public func im2col(_ g: ConvGeometry) -> Tensor {
        require(rank == 4 && shape[1] == g.channels && shape[2] == g.height && shape[3] == g.width,
                     "im2col expects [N, \(g.channels), \(g.height), \(g.width)], got \(shape)")
        let n = shape[0]
        return Kernels.im2col(self, g).recordOp("Im2colBackward", [self]) { grad in [grad.col2im(g, batch: n)] }
    }

    /// The adjoint of `im2col` (PyTorch's `fold`): windows summed back into `[N, C, H, W]`.
    public func col2im(_ g: ConvGeometry, batch n: Int) -> Tensor {
        require(rank == 2 && shape[0] == g.patchSize && shape[1] == n * g.outHeight * g.outWidth,
                     "col2im expects [\(g.patchSize), \(n * g.outHeight * g.outWidth)], got \(shape)")
        return Kernels.col2im(self, g, batch: n).recordOp("Col2imBackward", [self]) { grad in [grad.im2col(g)] }
    }
}

/// How much zero padding a convolution adds.
public enum Padding: Equatable, Sendable {
    /// The same amount on both sides of each spatial dimension.
    case explicit(h: Int, w: Int)
    /// No padding.
    case valid
    /// Enough padding that the output has the input's size (stride 1 only), extra on the far side.
    case same

    public static func symmetric(_ p: Int) -> Padding { .explicit(h: p, w: p) }

    func amounts(kernel: (h: Int, w: Int), dilation: (h: Int, w: Int)) -> (before: (h: Int, w: Int), after: (h: Int, w: Int)) {
        switch self {
        case .explicit(let h, let w): return ((h, w), (h, w))
        case .valid: return ((0, 0), (0, 0))
        case .same:
            let th = dilation.h * (kernel.h - 1), tw = dilation.w * (kernel.w - 1)
            return ((th / 2, tw / 2), (th - th / 2, tw - tw / 2))
        }
    }
}

/// 2-D convolution (cross-correlation, as in PyTorch) of `input [N, C, H, W]` with
/// `weight [outC, C/groups, kh, kw]`.
public func conv2d(_ input: Tensor, weight: Tensor, bias: Tensor? = nil, stride: (Int, Int) = (1, 1),
                   padding: Padding = .valid, dilation: (Int, Int) = (1, 1), groups: Int = 1) -> Tensor {
    require(input.rank == 4, "conv2d expects input [N, C, H, W], got \(input.shape)")
    require(weight.rank == 4, "conv2d expects weight [outC, C/groups, kh, kw], got \(weight.shape)")
    let (n, c, h, w) = (input.shape[0], input.shape[1], input.shape[2], input.shape[3])
    let outC = weight.shape[0], kh = weight.shape[2], kw = weight.shape[3]
    require(groups > 0, "conv2d: groups must be positive, got \(groups)")
    require(c % groups == 0 && outC % groups == 0 && weight.shape[1] == c / groups,
                 "conv2d: input has \(c) channels and weight \(weight.shape) with groups=\(groups); expected weight [\(outC), \(c / Swift.max(groups, 1)), kh, kw]")
    require(padding != .same || stride == (1, 1), "padding 'same' needs stride 1")
    let pads = padding.amounts(kernel: (kh, kw), dilation: dilation)
    let g = ConvGeometry(channels: c, height: h, width: w, kernel: (kh, kw), stride: stride,
                         padBefore: pads.before, padAfter: pads.after, dilation: dilation)
    g.requireValid("conv2d")
    require(g.outHeight > 0 && g.outWidth > 0,
                 "conv2d: kernel \(kh)x\(kw) does not fit input \(h)x\(w) with this padding and dilation")
    require(weight.dtype == input.dtype && (bias?.dtype ?? input.dtype) == input.dtype,
                 "conv2d: input is \(input.dtype) but weight is \(weight.dtype)\(bias.map { " and bias \($0.dtype)" } ?? "")")
    let plan = ConvPlan(g, batch: n, outChannels: outC, groups: groups, elementSize: input.dtype.byteSize)
    let out = Kernels.conv2d(input, weight: weight, bias: bias, plan)
    let inputs = [input, weight] + (bias.map { [$0] } ?? [])
    return out.recordOp("ConvolutionBackward", inputs, writingInto: { grad, outputs in
        guard !GradMode.isEnabled else {
            // createGraph: the same gradients from differentiable ops, so they can be
            // differentiated again.
            return convolutionGradients(grad, input: input, weight: weight, geometry: g, groups: groups)
                + (bias.map { _ in [grad.sum(dims: [0, 2, 3])] } ?? [])
        }
        let r = Kernels.conv2dBackward(grad, input, weight: weight, plan, input: input.requiresGrad,
                                       weight: weight.requiresGrad, bias: bias?.requiresGrad ?? false, weightInto: outputs[1])
        return [r.input, r.weight] + (bias.map { _ in [r.bias] } ?? [])
    })
}

/// Input and weight gradients of `conv2d` composed of differentiable ops (im2col, grouped
/// matrix products, col2im), for backward passes that are themselves recorded.
func convolutionGradients(_ grad: Tensor, input: Tensor, weight: Tensor, geometry g: ConvGeometry, groups: Int) -> [Tensor?] {
    let n = input.shape[0], outC = weight.shape[0]
    // [N, outC, oh, ow] → [groups, outC/groups, N·L]: each group's rows are one block.
    let g3 = grad.permute([1, 0, 2, 3]).reshape([groups, outC / groups, -1])
    let w3 = weight.reshape([groups, outC / groups, -1])
    let dInput = input.requiresGrad
        ? w3.matmul(g3, transposeA: true).reshape([g.patchSize, -1]).col2im(g, batch: n) : nil
    let dWeight = weight.requiresGrad
        ? g3.matmul(input.im2col(g).reshape([groups, g.patchSize / groups, -1]), transposeB: true).reshape(weight.shape) : nil
    return [dInput, dWeight]
}

/// Transposed 2-D convolution (the gradient of `conv2d` with respect to its input) of
/// `input [N, inC, H, W]` with `weight [inC, outC, kh, kw]`.
public func convTranspose2d(_ input: Tensor, weight: Tensor, bias: Tensor? = nil, stride: (Int, Int) = (1, 1),
                            padding: (Int, Int) = (0, 0), outputPadding: (Int, Int) = (0, 0),
                            dilation: (Int, Int) = (1, 1)) -> Tensor {
    require(input.rank == 4 && weight.rank == 4 && weight.shape[0] == input.shape[1],
                 "convTranspose2d: input \(input.shape) and weight \(weight.shape) do not match (weight is [inC, outC, kh, kw])")
    let (n, h, w) = (input.shape[0], input.shape[2], input.shape[3])
    let outC = weight.shape[1], kh = weight.shape[2], kw = weight.shape[3]
    let oh = (h - 1) * stride.0 - 2 * padding.0 + dilation.0 * (kh - 1) + outputPadding.0 + 1
    let ow = (w - 1) * stride.1 - 2 * padding.1 + dilation.1 * (kw - 1) + outputPadding.1 + 1
    let g = ConvGeometry(channels: outC, height: oh, width: ow, kernel: (kh, kw), stride: stride,
                         padBefore: padding, padAfter: padding, dilation: dilation)
    g.requireValid("convTranspose2d")
    require(oh > 0 && ow > 0, "convTranspose2d: the output would be \(oh)×\(ow) for input \(h)×\(w); reduce the padding")
    require(g.outHeight == h && g.outWidth == w, "convTranspose2d: inconsistent output padding \(outputPadding)")
    let x = input.permute([1, 0, 2, 3]).reshape([input.shape[1], n * h * w])
    let cols = weight.reshape([weight.shape[0], -1]).matmul(x, transposeA: true)  // [outC·kh·kw, N·H·W]
    var out = cols.col2im(g, batch: n)
    if let bias { out = out + bias.reshape([1, outC, 1, 1]) }
    return out
}

extension Tensor {
    /// Max pooling over `[N, C, H, W]`; the gradient goes to each window's largest element.
    public func maxPool2d(kernelSize: (Int, Int), stride: (Int, Int)? = nil, padding: (Int, Int) = (0, 0),
                          dilation: (Int, Int) = (1, 1), ceilMode: Bool = false) -> Tensor {
        require(rank == 4, "maxPool2d expects [N, C, H, W], got \(shape)")
        let stride = stride ?? kernelSize
        let g = ConvGeometry(channels: shape[1], height: shape[2], width: shape[3], kernel: kernelSize,
                             stride: stride, padBefore: padding, padAfter: padding, dilation: dilation)
        g.requireValid("maxPool2d", pooling: true)
        let oh = Tensor.poolOutput(shape[2], kernelSize.0, stride.0, padding.0, dilation.0, ceilMode)
        let ow = Tensor.poolOutput(shape[3], kernelSize.1, stride.1, padding.1, dilation.1, ceilMode)
        require(oh > 0 && ow > 0, "maxPool2d: kernel \(kernelSize) is larger than the padded input \(shape)")
        let index = Kernels.maxPoolIndices(self, g, outHeight: oh, outWidth: ow)
        return reshape([shape[0], shape[1], shape[2] * shape[3]])
            .gather(dim: 2, index: index)
            .reshape([shape[0], shape[1], oh, ow])
    }

    /// Average pooling over `[N, C, H, W]`; padding counts toward the divisor unless told otherwise.
    public func avgPool2d(kernelSize: (Int, Int), stride: (Int, Int)? = nil, padding: (Int, Int) = (0, 0),
                          countIncludePad: Bool = true) -> Tensor {
        require(rank == 4, "avgPool2d expects [N, C, H, W], got \(shape)")
        let (n, c, h, w) = (shape[0], shape[1], shape[2], shape[3])
        let g = ConvGeometry(channels: 1, height: h, width: w, kernel: kernelSize, stride: stride ?? kernelSize,
                             padBefore: padding, padAfter: padding, dilation: (1, 1))
        g.requireValid("avgPool2d", pooling: true)
        let cols = reshape([n * c, 1, h, w]).im2col(g)  // [kh·kw, N·C·L]
        let sums = cols.sum(dim: 0).reshape([n * c, g.outHeight * g.outWidth])
        let divisor: Tensor
        if countIncludePad || padding == (0, 0) {
            divisor = scalarLike(Double(kernelSize.0 * kernelSize.1))
        } else {
            divisor = noGrad { Tensor.ones([1, 1, h, w], dtype: dtype).im2col(g).sum(dim: 0) }
        }
        return (sums / divisor).reshape([n, c, g.outHeight, g.outWidth])
    }

    /// Adaptive average pooling to `outputSize`, with PyTorch's window boundaries
    /// (`floor(i·H/oh) ..< ceil((i+1)·H/oh)`), as two small averaging matrix products.
    public func adaptiveAvgPool2d(_ outputSize: (Int, Int)) -> Tensor {
        require(rank == 4, "adaptiveAvgPool2d expects [N, C, H, W], got \(shape)")
        let rows = Tensor.adaptiveWeights(shape[2], outputSize.0, dtype: dtype)  // [oh, H]
        let cols = Tensor.adaptiveWeights(shape[3], outputSize.1, dtype: dtype)  // [ow, W]
        return rows.matmul(self).matmul(cols, transposeB: true)
    }

    static func adaptiveWeights(_ size: Int, _ out: Int, dtype: DType) -> Tensor {
        var m = [Double](repeating: 0, count: out * size)
        for i in 0..<out {
            let start = (i * size) / out, end = ((i + 1) * size + out - 1) / out
            for j in start..<end { m[i * size + j] = 1 / Double(end - start) }
        }
        return Tensor(m, shape: [out, size], dtype: dtype)
    }

    static func poolOutput(_ size: Int, _ k: Int, _ s: Int, _ p: Int, _ d: Int, _ ceilMode: Bool) -> Int {
        let span = size + 2 * p - d * (k - 1) - 1
        var out = (ceilMode ? (span + s - 1) / s : span / s) + 1
        // With ceil mode the last window must start inside the input or its left padding.
        if ceilMode && (out - 1) * s >= size + p { out -= 1 }
        return out
    }
}
