/// The geometry of a 2-D sliding window over `[channels, height, width]` planes.
public struct ConvGeometry: Equatable, Sendable {
    public var channels: Int, height: Int, width: Int
    public var kernel: (h: Int, w: Int)
    public var stride: (h: Int, w: Int)
    /// Zero padding before (top/left) and after (bottom/right) each spatial dimension.
    public var padBefore: (h: Int, w: Int)
    public var padAfter: (h: Int, w: Int)
    public var dilation: (h: Int, w: Int)

    public var outHeight: Int { (height + padBefore.h + padAfter.h - dilation.h * (kernel.h - 1) - 1) / stride.h + 1 }
    public var outWidth: Int { (width + padBefore.w + padAfter.w - dilation.w * (kernel.w - 1) - 1) / stride.w + 1 }
    /// Rows of the column matrix: one per (channel, kernel row, kernel column).
    public var patchSize: Int { channels * kernel.h * kernel.w }

    public static func == (a: ConvGeometry, b: ConvGeometry) -> Bool {
        a.channels == b.channels && a.height == b.height && a.width == b.width
            && a.kernel == b.kernel && a.stride == b.stride && a.padBefore == b.padBefore
            && a.padAfter == b.padAfter && a.dilation == b.dilation
    }
}

extension Kernels {
    /// `[N, C, H, W]` → `[C·kh·kw, N·oh·ow]`: each column holds one window, zeros for padding.
    /// With every sample's windows side by side, a convolution is one large matrix product.
    static func im2col(_ x: Tensor, _ g: ConvGeometry) -> Tensor {
        let n = x.shape[0], oh = g.outHeight, ow = g.outWidth
        let out = Tensor(uninitializedShape: [g.patchSize, n * oh * ow], dtype: x.dtype)
        func run<T: FloatElement>(_ src: UnsafePointer<T>, _ dst: UnsafeMutablePointer<T>) {
            let plane = g.height * g.width
            for b in 0..<n {
                for c in 0..<g.channels {
                    let image = src + (b * g.channels + c) * plane
                    for ki in 0..<g.kernel.h {
                        for kj in 0..<g.kernel.w {
                            let row = dst + (((c * g.kernel.h + ki) * g.kernel.w + kj) * n + b) * oh * ow
                            for oy in 0..<oh {
                                let iy = oy * g.stride.h - g.padBefore.h + ki * g.dilation.h
                                let line = row + oy * ow
                                guard iy >= 0 && iy < g.height else {
                                    line.update(repeating: 0, count: ow)
                                    continue
                                }
                                let input = image + iy * g.width
                                let x0 = kj * g.dilation.w - g.padBefore.w
                                if g.stride.w == 1 {
                                    // The valid part of the row is one contiguous copy.
                                    let lo = Swift.min(ow, Swift.max(0, -x0)), hi = Swift.max(lo, Swift.min(ow, g.width - x0))
                                    if lo > 0 { line.update(repeating: 0, count: lo) }
                                    if hi > lo { (line + lo).update(from: input + lo + x0, count: hi - lo) }
                                    if hi < ow { (line + hi).update(repeating: 0, count: ow - hi) }
                                } else {
                                    for ox in 0..<ow {
                                        let ix = ox * g.stride.w + x0
                                        line[ox] = ix >= 0 && ix < g.width ? input[ix] : 0
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        switch x.dtype {
        case .float32: run(x.pointer(Float.self), out.pointer(Float.self))
        case .float64: run(x.pointer(Double.self), out.pointer(Double.self))
        case .int64: preconditionFailure("convolution needs a floating-point tensor")
        }
        return out
    }

    /// The adjoint of `im2col`: `[C·kh·kw, N·oh·ow]` → `[N, C, H, W]`, overlapping windows add.
    static func col2im(_ cols: Tensor, _ g: ConvGeometry, batch n: Int) -> Tensor {
        let oh = g.outHeight, ow = g.outWidth
        let out = zeroed([n, g.channels, g.height, g.width], dtype: cols.dtype)
        func run<T: FloatElement>(_ src: UnsafePointer<T>, _ dst: UnsafeMutablePointer<T>) {
            let plane = g.height * g.width
            for b in 0..<n {
                for c in 0..<g.channels {
                    let image = dst + (b * g.channels + c) * plane
                    for ki in 0..<g.kernel.h {
                        for kj in 0..<g.kernel.w {
                            let row = src + (((c * g.kernel.h + ki) * g.kernel.w + kj) * n + b) * oh * ow
                            for oy in 0..<oh {
                                let iy = oy * g.stride.h - g.padBefore.h + ki * g.dilation.h
                                guard iy >= 0 && iy < g.height else { continue }
                                let output = image + iy * g.width, line = row + oy * ow
                                let x0 = kj * g.dilation.w - g.padBefore.w
                                if g.stride.w == 1 {
                                    let lo = Swift.min(ow, Swift.max(0, -x0)), hi = Swift.max(lo, Swift.min(ow, g.width - x0))
                                    let o = output + x0
                                    for ox in lo..<hi { o[ox] += line[ox] }
                                } else {
                                    for ox in 0..<ow {
                                        let ix = ox * g.stride.w + x0
                                        if ix >= 0 && ix < g.width { output[ix] += line[ox] }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        switch cols.dtype {
        case .float32: run(cols.pointer(Float.self), out.pointer(Float.self))
        case .float64: run(cols.pointer(Double.self), out.pointer(Double.self))
        case .int64: preconditionFailure("convolution needs a floating-point tensor")
        }
        return out
    }

    /// Index (into each `H·W` plane) of the largest value of every window; padding never wins.
    /// Output `[N, C, oh·ow]` int64.
    static func maxPoolIndices(_ x: Tensor, _ g: ConvGeometry, outHeight oh: Int, outWidth ow: Int) -> Tensor {
        let planes = x.shape[0] * g.channels
        let out = Tensor(uninitializedShape: [x.shape[0], g.channels, oh * ow], dtype: .int64)
        func run<T: FloatElement>(_ src: UnsafePointer<T>) {
            let idx = out.pointer(Int64.self), plane = g.height * g.width
            // Windows that lie wholly inside the image need no bounds checks: the common case.
            let interior = g.padBefore == (0, 0) && g.dilation == (1, 1)
                && (oh - 1) * g.stride.h + g.kernel.h <= g.height && (ow - 1) * g.stride.w + g.kernel.w <= g.width
            for p in 0..<planes {
                let image = src + p * plane
                let indices = idx + p * oh * ow
                if interior && g.kernel == (2, 2) && g.stride == (2, 2) && T.self == Float.self {
                    maxPool2x2(UnsafeRawPointer(image).assumingMemoryBound(to: Float.self), width: g.width,
                               outHeight: oh, outWidth: ow, into: indices)
                    continue
                }
                if interior {
                    for oy in 0..<oh {
                        for ox in 0..<ow {
                            let start = oy * g.stride.h * g.width + ox * g.stride.w
                            var best = start, bestValue = image[start]
                            for ki in 0..<g.kernel.h {
                                let row = start + ki * g.width
                                for kj in 0..<g.kernel.w {
                                    let v = image[row + kj]
                                    // NaN wins, as in PyTorch (v != v only for NaN). Selects, not
                                    // branches: on real data the comparison is a coin toss.
                                    let take = (v > bestValue) || (v != v && bestValue == bestValue)
                                    best = take ? row + kj : best
                                    bestValue = take ? v : bestValue
                                }
                            }
                            indices[oy * ow + ox] = Int64(best)
                        }
                    }
                    continue
                }
                for oy in 0..<oh {
                    for ox in 0..<ow {
                        var best = -1, bestValue = -T.infinity
                        for ki in 0..<g.kernel.h {
                            let iy = oy * g.stride.h - g.padBefore.h + ki * g.dilation.h
                            guard iy >= 0 && iy < g.height else { continue }
                            for kj in 0..<g.kernel.w {
                                let ix = ox * g.stride.w - g.padBefore.w + kj * g.dilation.w
                                guard ix >= 0 && ix < g.width else { continue }
                                let v = image[iy * g.width + ix]
                                if best < 0 || v > bestValue || (v != v && bestValue == bestValue) { best = iy * g.width + ix; bestValue = v }
                            }
                        }
                        indices[oy * ow + ox] = Int64(Swift.max(best, 0))
                    }
                }
            }
        }
        switch x.dtype {
        case .float32: run(x.pointer(Float.self))
        case .float64: run(x.pointer(Double.self))
        case .int64: preconditionFailure("max pooling needs a floating-point tensor")
        }
        return out
    }

    /// 2×2 windows with stride 2 (LeNet's and most CNNs' pooling), eight windows at a time with
    /// SIMD compares and selects instead of unpredictable branches. A block holding a NaN goes
    /// through the scalar rule so NaN still wins, as in PyTorch.
    private static let evenLanes = SIMD8<Int64>(0, 2, 4, 6, 8, 10, 12, 14)

    static func maxPool2x2(_ image: UnsafePointer<Float>, width w: Int, outHeight oh: Int, outWidth ow: Int,
                           into indices: UnsafeMutablePointer<Int64>) {
        for oy in 0..<oh {
            let r0 = image + 2 * oy * w, r1 = r0 + w
            let rowBase = 2 * oy * w
            var ox = 0
            while ox + 8 <= ow {
                let top = UnsafeRawPointer(r0 + 2 * ox).loadUnaligned(as: SIMD16<Float>.self)
                let bottom = UnsafeRawPointer(r1 + 2 * ox).loadUnaligned(as: SIMD16<Float>.self)
                let a = top.evenHalf, b = top.oddHalf, c = bottom.evenHalf, d = bottom.oddHalf
                if any(a .!= a) || any(b .!= b) || any(c .!= c) || any(d .!= d) { break }
                let right1 = b .> a, right2 = d .> c
                let m1 = a.replacing(with: b, where: right1), m2 = c.replacing(with: d, where: right2)
                let lower = m2 .> m1
                var offset = SIMD8<Int32>(repeating: 0)
                offset.replace(with: 1, where: (right1 .& .!lower) .| (right2 .& lower))
                offset &+= SIMD8<Int32>(repeating: Int32(w)).replacing(with: 0, where: .!lower)
                let index = SIMD8<Int64>(truncatingIfNeeded: offset) &+ Self.evenLanes &+ Int64(rowBase + 2 * ox)
                UnsafeMutableRawPointer(indices + oy * ow + ox).storeBytes(of: index, as: SIMD8<Int64>.self)
                ox += 8
            }
            while ox < ow {
                let base = rowBase + 2 * ox
                var best = base, bestValue = image[base]
                for k in 1..<4 {
                    let candidate = base + (k >> 1) * w + (k & 1)
                    let v = image[candidate]
                    if v > bestValue || (v != v && bestValue == bestValue) { best = candidate; bestValue = v }
                }
                indices[oy * ow + ox] = Int64(best)
                ox += 1
            }
        }
    }
}
