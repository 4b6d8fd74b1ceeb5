/// 1-D pooling as the 2-D pooling of a height-1 image (ConvolutionOps.swift holds the 2-D ops).
extension Tensor {
    /// `[N, C, L]` or `[C, L]` as a height-1 image `[N, C, 1, L]`, and back: 1-D pooling is the
    /// 2-D pooling of such an image (its forward and backward).
    private func asRow(_ op: String) -> (image: Tensor, unbatched: Bool) {
        require(rank == 2 || rank == 3, "\(op) expects [N, C, L] or [C, L], got \(shape)")
        let batched = rank == 3 ? self : unsqueeze(0)
        return (batched.unsqueeze(2), rank == 2)
    }

    private static func fromRow(_ y: Tensor, unbatched: Bool) -> Tensor {
        let row = y.squeeze(2)
        return unbatched ? row.squeeze(0) : row
    }

    /// Max pooling over the last dimension of `[N, C, L]` or `[C, L]` (`F.max_pool1d`).
    public func maxPool1d(kernelSize: Int, stride: Int? = nil, padding: Int = 0, dilation: Int = 1, ceilMode: Bool = false) -> Tensor {
        let (image, unbatched) = asRow("maxPool1d")
        return Self.fromRow(image.maxPool2d(kernelSize: (1, kernelSize), stride: (1, stride ?? kernelSize), padding: (0, padding),
                                            dilation: (1, dilation), ceilMode: ceilMode), unbatched: unbatched)
    }

    /// Average pooling over the last dimension of `[N, C, L]` or `[C, L]` (`F.avg_pool1d`).
    public func avgPool1d(kernelSize: Int, stride: Int? = nil, padding: Int = 0, countIncludePad: Bool = true) -> Tensor {
        let (image, unbatched) = asRow("avgPool1d")
        return Self.fromRow(image.avgPool2d(kernelSize: (1, kernelSize), stride: (1, stride ?? kernelSize), padding: (0, padding),
                                            countIncludePad: countIncludePad), unbatched: unbatched)
    }

    /// Adaptive average pooling of the last dimension to `outputSize` (PyTorch's windows).
    public func adaptiveAvgPool1d(_ outputSize: Int) -> Tensor {
        require(rank == 2 || rank == 3, "adaptiveAvgPool1d expects [N, C, L] or [C, L], got \(shape)")
        require(outputSize >= 1, "adaptiveAvgPool1d: outputSize must be at least 1, got \(outputSize)")
        return matmul(Tensor.adaptiveWeights(shape[rank - 1], outputSize, dtype: dtype), transposeB: true)
    }

    /// Adaptive max pooling of the last dimension to `outputSize`: window `i` is
    /// `floor(i·L/out) ..< ceil((i+1)·L/out)`; the gradient goes to each window's largest element.
    public func adaptiveMaxPool1d(_ outputSize: Int) -> Tensor {
        require(rank == 2 || rank == 3, "adaptiveMaxPool1d expects [N, C, L] or [C, L], got \(shape)")
        require(outputSize >= 1, "adaptiveMaxPool1d: outputSize must be at least 1, got \(outputSize)")
        let length = shape[rank - 1]
        let windows = (0..<outputSize).map { i -> Tensor in
            let start = (i * length) / outputSize, end = ((i + 1) * length + outputSize - 1) / outputSize
            return narrow(dim: rank - 1, start: start, length: end - start).max(dim: rank - 1, keepDim: true).values
        }
        return Tensor.cat(windows, dim: rank - 1)
    }
}
