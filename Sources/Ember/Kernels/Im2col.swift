/// The geometry of a 2-D sliding window over `[channels, height, width]` planes.
public struct ConvGeometry: Equatable, Sendable {
    public var channels: Int, height: Int, width: Int
    public var kernel: (h: Int, w: Int)
    public var stride: (h: Int, w: Int)
    /// Zero padding before (top/left) and after (bottom/right) each spatial dimension.
    public var padBefore: (h: Int, w: Int)
    public var padAfter: (h: Int, w: Int)
    public var dilation: (h: Int, w: Int)

    /// Stops, naming `op`, unless the kernel, stride and dilation are positive, the padding is
    /// non-negative, and (`pooling`) the padding is at most half the kernel, as PyTorch requires.
    func requireValid(_ op: String, pooling: Bool = false) {
        require(kernel.h > 0 && kernel.w > 0, "\(op): kernel size must be positive, got \(kernel.h)×\(kernel.w)")
        require(stride.h > 0 && stride.w > 0, "\(op): stride must be positive, got \(stride.h)×\(stride.w)")
        require(dilation.h > 0 && dilation.w > 0, "\(op): dilation must be positive, got \(dilation.h)×\(dilation.w)")
        require(padBefore.h >= 0 && padBefore.w >= 0 && padAfter.h >= 0 && padAfter.w >= 0,
                "\(op): padding must be non-negative, got \(padBefore.h)×\(padBefore.w)")
        require(!pooling || (2 * padBefore.h <= kernel.h && 2 * padBefore.w <= kernel.w),
                "\(op): padding should be at most half of kernel size, got padding \(padBefore.h)×\(padBefore.w) for kernel \(kernel.h)×\(kernel.w)")
    }

    public var outHeight: Int { (height + padBefore.h + padAfter.h - dilation.h * (kernel.h - 1) - 1) / stride.h + 1 }
    public var outWidth: Int { (width + padBefore.w + padAfter.w - dilation.w * (kernel.w - 1) - 1) / stride.w + 1 }
    /// Rows of the column matrix: one per (channel, kernel row, kernel column).
    public var patchSize: Int { channels * kernel.h * kernel.w }
    /// Stride 1, no dilation, no padding: every window lies inside the image, so unfolding is
    /// plain row copies.
    var isDense: Bool {
        stride == (1, 1) && dilation == (1, 1) && padBefore == (0, 0) && padAfter == (0, 0)
    }

    /// For stride 1 without dilation: the same windows over images with the zero padding
    /// written out, which makes the geometry dense.
    var paddedDense: ConvGeometry? {
        guard stride == (1, 1) && dilation == (1, 1) && !isDense else { return nil }
        return ConvGeometry(channels: channels, height: height + padBefore.h + padAfter.h, width: width + padBefore.w + padAfter.w,
                            kernel: kernel, stride: (1, 1), padBefore: (0, 0), padAfter: (0, 0), dilation: (1, 1))
    }

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
        let n = x.shape[0]
        let out = Tensor(uninitializedShape: [g.patchSize, n * g.outHeight * g.outWidth], dtype: x.dtype)
        switch x.dtype {
        case .float32: im2col(x.pointer(Float.self), samples: n, g, into: out.pointer(Float.self))
        case .float64: im2col(x.pointer(Double.self), samples: n, g, into: out.pointer(Double.self))
        case .int64, .bfloat16: stop(x.dtype.refusal("convolution"))
        }
        return out
    }

    /// The adjoint of `im2col`: `[C·kh·kw, N·oh·ow]` → `[N, C, H, W]`, overlapping windows add.
    static func col2im(_ cols: Tensor, _ g: ConvGeometry, batch n: Int) -> Tensor {
        let out = zeroed([n, g.channels, g.height, g.width], dtype: cols.dtype)
        switch cols.dtype {
        case .float32: col2imAdd(cols.pointer(Float.self), samples: n, g, into: out.pointer(Float.self))
        case .float64: col2imAdd(cols.pointer(Double.self), samples: n, g, into: out.pointer(Double.self))
        case .int64, .bfloat16: stop(cols.dtype.refusal("convolution"))
        }
        return out
    }

    /// `im2col` of `n` samples at `src` into `dst` (`[C·kh·kw, n·oh·ow]`), so callers can unfold
    /// a chunk of a batch into a reused buffer.
    ///
    /// Feature-map rows are short (LeNet's are 10 to 28 wide), so per-row bookkeeping is what
    /// costs: dense windows copy rows with nothing to check, padded stride-1 windows become dense
    /// over zero-padded copies of the images, and the general case computes each row's valid
    /// span once per kernel column. Rows are copied with vector loads and stores.
    static func im2col<T: FloatElement>(_ src: UnsafePointer<T>, samples n: Int, _ g: ConvGeometry, into dst: UnsafeMutablePointer<T>) {
        let ow = g.outWidth
        if g.isDense {
            forEachDenseLine(g, samples: n) { line, image in copySpan(from: src + image, to: dst + line, count: ow) }
            return
        }
        if let dense = g.paddedDense {
            // Pad the images once (a few kilobytes per sample), then unfold densely.
            return withZeroedImages(dense, samples: n, T.self) { padded in
                forEachInteriorRow(g, dense, samples: n) { image, paddedRow in
                    copySpan(from: src + image, to: padded + paddedRow, count: g.width)
                }
                im2col(padded, samples: n, dense, into: dst)
            }
        }
        forEachWindowRow(g, samples: n) { row, inputRow, lo, hi, x0 in
            let line = dst + row
            guard inputRow >= 0 else { return line.update(repeating: 0, count: ow) }
            let input = src + inputRow
            if g.stride.w == 1 {
                // Padding columns are few (a kernel's half width): loops, not memset calls.
                for i in 0..<lo { line[i] = 0 }
                copySpan(from: input + x0 + lo, to: line + lo, count: hi - lo)
                for i in hi..<ow { line[i] = 0 }
            } else {
                for ox in 0..<ow {
                    let ix = ox &* g.stride.w &+ x0
                    line[ox] = ix >= 0 && ix < g.width ? input[ix] : 0
                }
            }
        }
    }

    /// Adds the windows of `src` (`[C·kh·kw, n·oh·ow]`) into the `n` images at `dst`.
    static func col2imAdd<T: FloatElement>(_ src: UnsafePointer<T>, samples n: Int, _ g: ConvGeometry, into dst: UnsafeMutablePointer<T>) {
        if g.isDense {
            let ow = g.outWidth
            forEachDenseLine(g, samples: n) { line, image in addSpan(from: src + line, to: dst + image, count: ow) }
            return
        }
        if let dense = g.paddedDense {
            // Fold densely into padded images, then add their interiors.
            return withZeroedImages(dense, samples: n, T.self) { padded in
                col2imAdd(src, samples: n, dense, into: padded)
                forEachInteriorRow(g, dense, samples: n) { image, paddedRow in
                    addSpan(from: padded + paddedRow, to: dst + image, count: g.width)
                }
            }
        }
        forEachWindowRow(g, samples: n) { row, imageRow, lo, hi, x0 in
            guard imageRow >= 0 else { return }
            let output = dst + imageRow, line = src + row
            if g.stride.w == 1 {
                addSpan(from: line + lo, to: output + x0 + lo, count: hi - lo)
            } else {
                for ox in 0..<g.outWidth {
                    let ix = ox &* g.stride.w &+ x0
                    if ix >= 0 && ix < g.width { output[ix] += line[ox] }
                }
            }
        }
    }

    /// Zeroed scratch for `n` images of `g`'s size.
    static func withZeroedImages<T: FloatElement>(_ g: ConvGeometry, samples n: Int, _ type: T.Type,
                                                 _ body: (UnsafeMutablePointer<T>) -> Void) {
        let count = n * g.channels * g.height * g.width
        let scratch = Tensor(uninitializedShape: [count], dtype: T.dtype)
        withExtendedLifetime(scratch) {
            let p = scratch.pointer(T.self)
            p.update(repeating: 0, count: count)
            body(p)
        }
    }

    /// (offset of an image row of `g`, offset of the same row inside the padded image of `dense`)
    /// for every row of `n` samples.
    @inline(__always)
    static func forEachInteriorRow(_ g: ConvGeometry, _ dense: ConvGeometry, samples n: Int, _ body: (Int, Int) -> Void) {
        for p in 0..<(n * g.channels) {
            for y in 0..<g.height {
                body((p * g.height + y) * g.width, (p * dense.height + y + g.padBefore.h) * dense.width + g.padBefore.w)
            }
        }
    }

    /// `forEachWindowRow` for a dense geometry (every window inside the image): (offset of the
    /// line in the column matrix, offset of the image row segment it copies), nothing to check.
    @inline(__always)
    static func forEachDenseLine(_ g: ConvGeometry, samples n: Int, _ body: (Int, Int) -> Void) {
        let oh = g.outHeight, ow = g.outWidth, w = g.width, plane = g.height &* w
        var line = 0
        for c in 0..<g.channels {
            for ki in 0..<g.kernel.h {
                for kj in 0..<g.kernel.w {
                    for b in 0..<n {
                        var image = (b &* g.channels &+ c) &* plane &+ ki &* w &+ kj
                        for _ in 0..<oh {
                            body(line, image)
                            line &+= ow
                            image &+= w
                        }
                    }
                }
            }
        }
    }

    /// Calls `body` for every line of the column matrix (one output row of one window row of one
    /// sample), in memory order: (offset of the line in the column matrix, offset of the image
    /// row it reads, or -1 when that row lies in the padding, the valid span `lo..<hi` of the
    /// line for stride 1, and the image column that output column 0 reads).
    @inline(__always)
    static func forEachWindowRow(_ g: ConvGeometry, samples n: Int, _ body: (Int, Int, Int, Int, Int) -> Void) {
        let oh = g.outHeight, ow = g.outWidth, plane = g.height &* g.width, l = oh &* ow
        var row = 0
        for c in 0..<g.channels {
            for ki in 0..<g.kernel.h {
                let y0 = ki &* g.dilation.h &- g.padBefore.h
                for kj in 0..<g.kernel.w {
                    let x0 = kj &* g.dilation.w &- g.padBefore.w
                    let lo = Swift.min(ow, Swift.max(0, -x0)), hi = Swift.max(lo, Swift.min(ow, g.width &- x0))
                    for b in 0..<n {
                        let image = (b &* g.channels &+ c) &* plane
                        for oy in 0..<oh {
                            let iy = oy &* g.stride.h &+ y0
                            body(row &+ oy &* ow, iy >= 0 && iy < g.height ? image &+ iy &* g.width : -1, lo, hi, x0)
                        }
                        row &+= l
                    }
                }
            }
        }
    }

    /// Copies `count` elements with 8-wide vector moves (the last one overlapping the one before
    /// it rather than falling back to scalars).
    @inline(__always)
    static func copySpan<T: FloatElement>(from: UnsafePointer<T>, to: UnsafeMutablePointer<T>, count: Int) {
        guard count >= 8 else {
            for i in 0..<Swift.max(count, 0) { to[i] = from[i] }
            return
        }
        let s = UnsafeRawPointer(from), d = UnsafeMutableRawPointer(to), step = MemoryLayout<T>.stride
        var i = 0
        while i &+ 8 < count {
            d.storeBytes(of: s.loadUnaligned(fromByteOffset: i &* step, as: SIMD8<T>.self), toByteOffset: i &* step, as: SIMD8<T>.self)
            i &+= 8
        }
        let last = (count &- 8) &* step
        d.storeBytes(of: s.loadUnaligned(fromByteOffset: last, as: SIMD8<T>.self), toByteOffset: last, as: SIMD8<T>.self)
    }

    /// `to[i] += from[i]` for `count` elements, 8 at a time.
    @inline(__always)
    static func addSpan<T: FloatElement>(from: UnsafePointer<T>, to: UnsafeMutablePointer<T>, count: Int) {
        let s = UnsafeRawPointer(from), d = UnsafeMutableRawPointer(to), step = MemoryLayout<T>.stride
        var i = 0
        while i &+ 8 <= count {
            let sum = d.loadUnaligned(fromByteOffset: i &* step, as: SIMD8<T>.self) + s.loadUnaligned(fromByteOffset: i &* step, as: SIMD8<T>.self)
            d.storeBytes(of: sum, toByteOffset: i &* step, as: SIMD8<T>.self)
            i &+= 8
        }
        while i < count { to[i] += from[i]; i &+= 1 }
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
                if interior && g.kernel == (2, 2) && g.stride == (2, 2) && T.self == Float.self
                    && maxPool2x2(UnsafeRawPointer(image).assumingMemoryBound(to: Float.self), width: g.width,
                                  outHeight: oh, outWidth: ow, into: indices) {
                    continue
                }
                if interior { maxPoolInterior(image, g, outHeight: oh, outWidth: ow, into: indices) } else { maxPoolPadded(image, g, outHeight: oh, outWidth: ow, into: indices) }
            }
        }
        switch x.dtype {
        case .float32: run(x.pointer(Float.self))
        case .float64: run(x.pointer(Double.self))
        case .int64, .bfloat16: stop(x.dtype.refusal("max pooling"))
        }
        return out
    }

    /// One plane's windows when all of them lie inside the image: no bounds checks.
    private static func maxPoolInterior<T: FloatElement>(_ image: UnsafePointer<T>, _ g: ConvGeometry, outHeight oh: Int, outWidth ow: Int,
                                                         into indices: UnsafeMutablePointer<Int64>) {
        for oy in 0..<oh {
            for ox in 0..<ow {
                let start = oy * g.stride.h * g.width + ox * g.stride.w
                var best = start, bestValue = image[start]
                for ki in 0..<g.kernel.h {
                    let row = start + ki * g.width
                    for kj in 0..<g.kernel.w {
                        let v = image[row + kj]
                        // NaN wins, as in PyTorch (v != v only for NaN). Selects, not branches: on
                        // real data the comparison is a coin toss.
                        let take = (v > bestValue) || (v != v && bestValue == bestValue)
                        best = take ? row + kj : best
                        bestValue = take ? v : bestValue
                    }
                }
                indices[oy * ow + ox] = Int64(best)
            }
        }
    }

    /// One plane's windows with padding or dilation: positions outside the image are skipped.
    private static func maxPoolPadded<T: FloatElement>(_ image: UnsafePointer<T>, _ g: ConvGeometry, outHeight oh: Int, outWidth ow: Int,
                                                       into indices: UnsafeMutablePointer<Int64>) {
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

    /// 2×2 windows with stride 2 (LeNet's and most CNNs' pooling), without unpredictable
    /// branches: a vertical pass takes the larger of each column pair (vectorised), then each
    /// window picks its column. Ties go to the first element in row-major order, as in PyTorch.
    /// Returns false (and the caller uses the general loop) for a plane holding a NaN.
    static func maxPool2x2(_ image: UnsafePointer<Float>, width w: Int, outHeight oh: Int, outWidth ow: Int,
                           into indices: UnsafeMutablePointer<Int64>) -> Bool {
        let span = 2 * ow
        return withUnsafeTemporaryAllocation(of: Float.self, capacity: span) { columnMax in
            withUnsafeTemporaryAllocation(of: Int32.self, capacity: span) { fromBottom in
                for oy in 0..<oh {
                    let rowBase = 2 * oy * w
                    let r0 = image + rowBase, r1 = r0 + w
                    var nans: Int32 = 0
                    for i in 0..<span {
                        let a = r0[i], c = r1[i]
                        let lower: Int32 = c > a ? 1 : 0
                        columnMax[i] = c > a ? c : a
                        fromBottom[i] = lower
                        nans &+= (a != a ? 1 : 0) &+ (c != c ? 1 : 0)
                    }
                    guard nans == 0 else { return false }
                    let out = indices + oy * ow
                    for ox in 0..<ow {
                        let l = columnMax[2 * ox], r = columnMax[2 * ox &+ 1]
                        let bl = Int(fromBottom[2 * ox]), br = Int(fromBottom[2 * ox &+ 1])
                        // On a tie the right column wins only if its element comes first (top
                        // row). Integer arithmetic on comparison results: no branches.
                        let greater = r > l ? 1 : 0, equal = r == l ? 1 : 0, earlier = bl > br ? 1 : 0
                        let right = greater | (equal & earlier)
                        let row = bl &+ right &* (br &- bl)
                        out[ox] = Int64(rowBase &+ row &* w &+ 2 &* ox &+ right)
                    }
                }
                return true
            }
        }
    }
}
