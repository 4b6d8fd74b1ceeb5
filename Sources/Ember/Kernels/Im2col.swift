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
    /// `[N, C, H, W]` → `[N, C·kh·kw, oh·ow]`: each column holds one window, zeros for padding.
    static func im2col(_ x: Tensor, _ g: ConvGeometry) -> Tensor {
        let n = x.shape[0], oh = g.outHeight, ow = g.outWidth
        let out = Tensor(uninitializedShape: [n, g.patchSize, oh * ow], dtype: x.dtype)
        func run<T: FloatElement>(_ src: UnsafePointer<T>, _ dst: UnsafeMutablePointer<T>) {
            let plane = g.height * g.width
            for b in 0..<n {
                for c in 0..<g.channels {
                    let image = src + (b * g.channels + c) * plane
                    for ki in 0..<g.kernel.h {
                        for kj in 0..<g.kernel.w {
                            let row = dst + ((b * g.patchSize) + (c * g.kernel.h + ki) * g.kernel.w + kj) * oh * ow
                            for oy in 0..<oh {
                                let iy = oy * g.stride.h - g.padBefore.h + ki * g.dilation.h
                                let line = row + oy * ow
                                guard iy >= 0 && iy < g.height else {
                                    line.update(repeating: 0, count: ow)
                                    continue
                                }
                                let input = image + iy * g.width
                                let x0 = kj * g.dilation.w - g.padBefore.w
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
        switch x.dtype {
        case .float32: run(x.pointer(Float.self), out.pointer(Float.self))
        case .float64: run(x.pointer(Double.self), out.pointer(Double.self))
        case .int64: preconditionFailure("convolution needs a floating-point tensor")
        }
        return out
    }

    /// The adjoint of `im2col`: `[N, C·kh·kw, oh·ow]` → `[N, C, H, W]`, overlapping windows add.
    static func col2im(_ cols: Tensor, _ g: ConvGeometry) -> Tensor {
        let n = cols.shape[0], oh = g.outHeight, ow = g.outWidth
        let out = zeroed([n, g.channels, g.height, g.width], dtype: cols.dtype)
        func run<T: FloatElement>(_ src: UnsafePointer<T>, _ dst: UnsafeMutablePointer<T>) {
            let plane = g.height * g.width
            for b in 0..<n {
                for c in 0..<g.channels {
                    let image = dst + (b * g.channels + c) * plane
                    for ki in 0..<g.kernel.h {
                        for kj in 0..<g.kernel.w {
                            let row = src + ((b * g.patchSize) + (c * g.kernel.h + ki) * g.kernel.w + kj) * oh * ow
                            for oy in 0..<oh {
                                let iy = oy * g.stride.h - g.padBefore.h + ki * g.dilation.h
                                guard iy >= 0 && iy < g.height else { continue }
                                let output = image + iy * g.width, line = row + oy * ow
                                let x0 = kj * g.dilation.w - g.padBefore.w
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
            for p in 0..<planes {
                let image = src + p * plane
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
                                if best < 0 || v > bestValue || v.isNaN { best = iy * g.width + ix; bestValue = v }
                                if v.isNaN { break }
                            }
                        }
                        idx[(p * oh + oy) * ow + ox] = Int64(Swift.max(best, 0))
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
}
