extension Tensor {
    /// A float32 tensor from row-major values; `shape` defaults to `[values.count]`.
    public convenience init(_ values: [Float], shape: [Int]? = nil, requiresGrad: Bool = false) {
        self.init(doubles: values.map(Double.init), shape: shape, dtype: .float32, requiresGrad: requiresGrad)
    }

    /// A tensor of `dtype` from row-major values: `Tensor([1, 2], dtype: .float64)`.
    public convenience init(_ values: [Double], shape: [Int]? = nil, dtype: DType, requiresGrad: Bool = false) {
        self.init(doubles: values, shape: shape, dtype: dtype, requiresGrad: requiresGrad)
    }

    /// An int64 tensor (labels, indices) from row-major values.
    public convenience init(indices values: [Int], shape: [Int]? = nil) {
        self.init(doubles: values.map(Double.init), shape: shape, dtype: .int64, requiresGrad: false)
    }

    /// A zero-dimensional (scalar) tensor.
    public convenience init(scalar: Double, dtype: DType = .float32, requiresGrad: Bool = false) {
        self.init(doubles: [scalar], shape: [], dtype: dtype, requiresGrad: requiresGrad)
    }

    convenience init(doubles values: [Double], shape: [Int]?, dtype: DType, requiresGrad: Bool) {
        let shape = shape ?? [values.count]
        let expected = Tensor.elementCount(shape)
        require(expected == values.count,
                     "\(values.count) values cannot fill shape \(shape) (needs \(expected))")
        self.init(uninitializedShape: shape, dtype: dtype)
        switch dtype {
        case .float32: let p = pointer(Float.self); for (i, v) in values.enumerated() { p[i] = Float(v) }
        case .float64: let p = pointer(Double.self); for (i, v) in values.enumerated() { p[i] = v }
        case .int64: let p = pointer(Int64.self); for (i, v) in values.enumerated() { p[i] = Int64(v) }
        // Through float32, as PyTorch converts a double to bfloat16.
        case .bfloat16: let p = pointer(UInt16.self); for (i, v) in values.enumerated() { p[i] = BFloat16.bits(Float(v)) }
        }
        if requiresGrad { self.requiresGrad = true }
    }

    /// A tensor of `shape` with every element `value`.
    public static func full(_ shape: [Int], _ value: Double, dtype: DType = .float32, requiresGrad: Bool = false) -> Tensor {
        let t = Tensor(uninitializedShape: shape, dtype: dtype)
        t.fill(value)
        if requiresGrad { t.requiresGrad = true }
        return t
    }

    public static func zeros(_ shape: [Int], dtype: DType = .float32, requiresGrad: Bool = false) -> Tensor {
        full(shape, 0, dtype: dtype, requiresGrad: requiresGrad)
    }

    public static func ones(_ shape: [Int], dtype: DType = .float32, requiresGrad: Bool = false) -> Tensor {
        full(shape, 1, dtype: dtype, requiresGrad: requiresGrad)
    }

    public static func zerosLike(_ t: Tensor) -> Tensor { zeros(t.shape, dtype: t.dtype) }
    public static func onesLike(_ t: Tensor) -> Tensor { ones(t.shape, dtype: t.dtype) }

    /// Values `start, start + step, ...` below `end`, like `torch.arange`.
    public static func arange(_ start: Double = 0, _ end: Double, step: Double = 1, dtype: DType = .float32) -> Tensor {
        require(step != 0, "arange step must be non-zero")
        let n = Swift.max(0, Int(((end - start) / step).rounded(.up)))
        return Tensor(doubles: (0..<n).map { start + Double($0) * step }, shape: [n], dtype: dtype, requiresGrad: false)
    }

    /// `0, 1, ..., n - 1` as int64 (PyTorch's `torch.arange(n)`), or in `dtype`.
    public static func arange(_ n: Int, dtype: DType = .int64) -> Tensor {
        require(n >= 0, "arange(\(n)): the end must be non-negative")
        return dtype == .int64 ? Tensor(indices: Array(0..<n), shape: [n]) : arange(0, Double(n), dtype: dtype)
    }

    /// The `n` by `m` identity (ones on the diagonal).
    public static func eye(_ n: Int, _ m: Int? = nil, dtype: DType = .float32) -> Tensor {
        let m = m ?? n
        var values = [Double](repeating: 0, count: n * m)
        for i in 0..<Swift.min(n, m) { values[i * m + i] = 1 }
        return Tensor(doubles: values, shape: [n, m], dtype: dtype, requiresGrad: false)
    }

    /// Uniform values in [low, high).
    public static func rand(_ shape: [Int], low: Double = 0, high: Double = 1, dtype: DType = .float32,
                            generator: Generator = .default, requiresGrad: Bool = false) -> Tensor {
        if generator.drawsNothing { return Tensor.zeros(shape, dtype: dtype, requiresGrad: requiresGrad) }
        let n = shape.reduce(1, *)
        let u = generator.uniform(n).map { low + (high - low) * $0 }
        return Tensor(doubles: u, shape: shape, dtype: dtype, requiresGrad: requiresGrad)
    }

    /// Normal values with the given mean and standard deviation.
    public static func randn(_ shape: [Int], mean: Double = 0, std: Double = 1, dtype: DType = .float32,
                             generator: Generator = .default, requiresGrad: Bool = false) -> Tensor {
        if generator.drawsNothing { return Tensor.zeros(shape, dtype: dtype, requiresGrad: requiresGrad) }
        let n = shape.reduce(1, *)
        let z = generator.normal(n).map { mean + std * $0 }
        return Tensor(doubles: z, shape: shape, dtype: dtype, requiresGrad: requiresGrad)
    }

    /// Uniform integers in `low..<high` (int64 unless `dtype` says otherwise).
    public static func randint(low: Int = 0, high: Int, _ shape: [Int], dtype: DType = .int64,
                               generator: Generator = .default) -> Tensor {
        let n = shape.reduce(1, *)
        let v = generator.integers(n, low: low, high: high).map(Double.init)
        return Tensor(doubles: v, shape: shape, dtype: dtype, requiresGrad: false)
    }

    /// A random permutation of `0..<n` as int64.
    public static func randperm(_ n: Int, generator: Generator = .default) -> Tensor {
        Tensor(indices: generator.permutation(n))
    }

    /// Sets every element to `value` in place (no graph is recorded).
    public func fill(_ value: Double) {
        switch dtype {
        case .float32: pointer(Float.self).update(repeating: Float(value), count: count)
        case .float64: pointer(Double.self).update(repeating: value, count: count)
        case .int64: pointer(Int64.self).update(repeating: Int64(value), count: count)
        case .bfloat16: pointer(UInt16.self).update(repeating: BFloat16.bits(Float(value)), count: count)
        }
    }

    /// A copy with its own storage, outside any graph.
    public func clone() -> Tensor {
        let t = Tensor(uninitializedShape: shape, dtype: dtype)
        t.dataPointer.copyMemory(from: dataPointer, byteCount: count * dtype.byteSize)
        return t
    }

    /// Copies `source`'s values into this tensor in place (same shape; dtype converted).
    public func copy_(_ source: Tensor) {
        require(source.shape == shape, "copy_ needs equal shapes, got \(source.shape) into \(shape)")
        if source.dtype == dtype {
            dataPointer.copyMemory(from: source.dataPointer, byteCount: count * dtype.byteSize)
        } else {
            Kernels.convert(source, into: self)
        }
    }
}

/// Swift literals become zero-dimensional tensors: `x * 0.5`, `1 - x`, `let t: Tensor = 3`.
/// Float literals keep double precision and, like PyTorch scalars, take the other operand's dtype.
extension Tensor: ExpressibleByFloatLiteral, ExpressibleByIntegerLiteral {
    public convenience init(floatLiteral value: Double) {
        self.init(doubles: [value], shape: [], dtype: .float64, requiresGrad: false)
    }

    public convenience init(integerLiteral value: Int) {
        self.init(doubles: [Double(value)], shape: [], dtype: .int64, requiresGrad: false)
    }
}
