import CEmberProducts
import CEmberSupport

/// One layer of a recurrent network in one direction, over a whole sequence: the input
/// projection of every time step is one matrix product, each step one product for all gates and
/// one pass of gate arithmetic, and backward through time runs the same way (no graph node per
/// elementwise op). Sequences of unequal length: a batch row stops changing after its length
/// (its outputs there are zero); in reverse it starts at its last valid step.
enum RecurrentCell: Sendable, Equatable {
    case rnnTanh, rnnRelu, lstm, gru

    /// Gate blocks of `hiddenSize` in the weight matrices (LSTM i, f, g, o; GRU r, z, n).
    var gates: Int {
        switch self {
        case .rnnTanh, .rnnRelu: return 1
        case .lstm: return 4
        case .gru: return 3
        }
    }
}

/// What the forward pass keeps for the backward pass (all row-major, by processing step `s`
/// unless noted): activated gates `[T, N, G·H]`, states `h` before each step and after the last
/// `[T+1, N, P]`, LSTM cells `[T+1, N, H]`, GRU's `W_hn h + b_hn` `[T, N, H]`, the LSTM's
/// unprojected `o·tanh(c)` `[T, N, H]` when it projects. Raw buffers: the step loops index them
/// without bounds checks.
final class RecurrentTape<T: FloatElement> {
    let gates: UnsafeMutablePointer<T>, hs: UnsafeMutablePointer<T>, cs: UnsafeMutablePointer<T>
    let hhn: UnsafeMutablePointer<T>, raw: UnsafeMutablePointer<T>
    private let counts: [Int]

    init(_ d: RecurrentShape, projects: Bool) {
        let (tn, n, h, p) = (d.steps * d.batch, d.batch, d.hidden, d.output)
        counts = [tn * d.gateWidth, (d.steps + 1) * n * p, d.cell == .lstm ? (d.steps + 1) * n * h : 0,
                  d.cell == .gru ? tn * h : 0, projects ? tn * h : 0]
        // Every step writes every row unless lengths stop some: only then must the rest be zero.
        let buffers = counts.map { d.lengths == nil ? RecurrentTape.uninitialized($0) : RecurrentTape.zeroed($0) }
        (gates, hs, cs, hhn, raw) = (buffers[0], buffers[1], buffers[2], buffers[3], buffers[4])
    }

    deinit { for (b, count) in zip([gates, hs, cs, hhn, raw], counts) { RecurrentTape.release(b, count) } }

    /// `count` zeroed values from the caching allocator: a training step reuses the pages of the
    /// last one instead of taking fresh ones from the kernel (a tenth of an LSTM step faulting
    /// pages in when these came from `malloc`).
    static func zeroed(_ count: Int) -> UnsafeMutablePointer<T> {
        let b = uninitialized(count)
        b.initialize(repeating: 0, count: Swift.max(count, 1))
        return b
    }

    static func uninitialized(_ count: Int) -> UnsafeMutablePointer<T> {
        BufferCache.shared.take(Swift.max(count, 1) * MemoryLayout<T>.stride).bindMemory(to: T.self, capacity: Swift.max(count, 1))
    }

    /// `into[i] += values[i]`, vectorised for float32 (this generic loop stays scalar).
    static func add(_ values: UnsafePointer<T>, into target: UnsafeMutablePointer<T>, _ count: Int) {
        if T.self == Float.self {
            let t = UnsafeMutableRawPointer(target).assumingMemoryBound(to: Float.self)
            ember_add_f32(t, t, UnsafeRawPointer(values).assumingMemoryBound(to: Float.self), count)
        } else {
            for i in 0..<count { target[i] += values[i] }
        }
    }

    static func release(_ b: UnsafeMutablePointer<T>, _ count: Int) {
        BufferCache.shared.give(UnsafeMutableRawPointer(b), Swift.max(count, 1) * MemoryLayout<T>.stride)
    }
}

/// A product with the recurrent weight, which stays the same for the whole sequence: `C = A·Wᵀ`
/// (forward, W `[n, k]`) or `C = A·W` (backward, W `[k, n]`). For float32 on AVX-512 with `n` a
/// multiple of 32 the weight is laid out once (`ember_pack_product_f32`) and every step's product
/// runs without OpenBLAS repacking 1 MB of it per call (an LSTM of 256: 1.5× faster products);
/// otherwise it is BLAS.
struct RecurrentProduct<T: FloatElement> {
    let w: UnsafePointer<T>, n: Int, k: Int, transposed: Bool
    private let packed: UnsafeMutablePointer<Float>?
    /// Under bfloat16 autocast (with bfloat16 units): the weight rounded once for all the steps.
    private let rounded: UnsafeMutablePointer<UInt16>?

    init(_ w: UnsafePointer<T>, n: Int, k: Int, transposed: Bool) {
        (self.w, self.n, self.k, self.transposed) = (w, n, k, transposed)
        if T.self == Float.self, ember_products_bf16() != 0, ember_bf16_available() != 0, k > 0 {
            let r = BufferCache.shared.take(n * k * 2).bindMemory(to: UInt16.self, capacity: n * k)
            ember_round_bf16(floats(w), transposed ? n : k, transposed ? k : n, transposed ? k : n, r)
            (rounded, packed) = (r, nil)
            return
        }
        rounded = nil
        guard T.self == Float.self, n % 32 == 0, k > 0, ember_packed_product_available() != 0 else { packed = nil; return }
        let p = BufferCache.shared.take(n * k * MemoryLayout<Float>.stride).bindMemory(to: Float.self, capacity: n * k)
        ember_pack_product_f32(floats(w), k, n, transposed ? 1 : 0, p)
        packed = p
    }

    /// `c [m, n] = a [m, k] · B` (rows `lda` and `ldc` apart).
    func callAsFunction(m: Int, _ a: UnsafePointer<T>, lda: Int, _ c: UnsafeMutablePointer<T>, ldc: Int) {
        if let rounded {
            return Kernels.gemm(false, transposed, m: m, n: n, k: k, ProductOperand(a), lda: lda,
                                ProductOperand(w, rounded: UnsafePointer(rounded)), ldb: transposed ? k : n, beta: 0, c, ldc: ldc)
        }
        // The packed kernel is float32; under bfloat16 autocast the step's product goes to oneDNN's.
        guard let packed, ember_products_bf16() == 0 else {
            return Kernels.gemm(false, transposed, m: m, n: n, k: k, a, lda: lda, w, ldb: transposed ? k : n, beta: 0, c, ldc: ldc)
        }
        KernelProfile.countingProduct(flops: 2 * m * n * k) {
            ember_packed_product_f32(m, n, k, floats(a), lda, packed, floats(c), ldc)
        }
    }

    func release() {
        if let packed { BufferCache.shared.give(UnsafeMutableRawPointer(packed), n * k * MemoryLayout<Float>.stride) }
        if let rounded { BufferCache.shared.give(UnsafeMutableRawPointer(rounded), n * k * 2) }
    }
}

/// A float32 view of a generic buffer, for the C kernels of the float32 paths.

struct RecurrentShape {
    let steps: Int, batch: Int, input: Int, hidden: Int, output: Int, cell: RecurrentCell, reverse: Bool
    let lengths: [Int]?
    var gateWidth: Int { cell.gates * hidden }
    /// The time index of processing step `s`.
    func time(_ s: Int) -> Int { reverse ? steps - 1 - s : s }
    func active(_ n: Int, _ t: Int) -> Bool { t < (lengths?[n] ?? steps) }
}

extension Kernels {
    @inline(__always) static func logistic<T: FloatElement>(_ v: T) -> T { 1 / (1 + T.exp(-v)) }

    /// Forward: `out [T, N, P]` (by time), final `h [N, P]` and `c [N, H]`, and the tape.
    static func recurrentForward<T: FloatElement>(_ d: RecurrentShape, x: UnsafePointer<T>, h0: UnsafePointer<T>, c0: UnsafePointer<T>?,
                                                  wIH: UnsafePointer<T>, wHH: UnsafePointer<T>, bIH: UnsafePointer<T>?, bHH: UnsafePointer<T>?,
                                                  wHR: UnsafePointer<T>?, out: UnsafeMutablePointer<T>, hN: UnsafeMutablePointer<T>,
                                                  cN: UnsafeMutablePointer<T>?) -> RecurrentTape<T> {
        let (tn, n, h, p, gw) = (d.steps * d.batch, d.batch, d.hidden, d.output, d.gateWidth)
        // Every step's input projection in one product (plus both biases where they simply add).
        let sizes = [tn * gw, n * gw, n * h, n * p]
        let scratch = sizes.map { RecurrentTape<T>.uninitialized($0) }
        let (xp, hh, rawStep, projected) = (scratch[0], scratch[1], scratch[2], scratch[3])
        rawStep.initialize(repeating: 0, count: n * h)
        defer { for (b, count) in zip(scratch, sizes) { RecurrentTape.release(b, count) } }
        gemm(false, true, m: tn, n: gw, k: d.input, x, lda: d.input, wIH, ldb: d.input, beta: 0, xp, ldc: gw)
        if bIH != nil || (bHH != nil && d.cell != .gru) {
            let bias = (0..<gw).map { j in (bIH?[j] ?? 0) + (d.cell != .gru ? bHH?[j] ?? 0 : 0) }
            bias.withUnsafeBufferPointer { b in
                for r in 0..<tn {
                    let row = xp + r * gw
                    for j in 0..<gw { row[j] += b[j] }
                }
            }
        }
        let tape = RecurrentTape<T>(d, projects: wHR != nil)
        let recurrent = RecurrentProduct(wHH, n: gw, k: p, transposed: true)
        defer { recurrent.release() }
        let (gates, hs, cs, hhn) = (tape.gates, tape.hs, tape.cs, tape.hhn)
        hs.update(from: h0, count: n * p)
        if d.cell == .lstm { if let c0 { cs.update(from: c0, count: n * h) } else { cs.update(repeating: 0, count: n * h) } }
        var active = [UInt8](repeating: 1, count: n)
        // Float32 LSTM and GRU gates run in C (Activations.c, vectorised); the loops below are
        // the same arithmetic for float64 (fixtures, gradcheck) and for the plain RNN.
        let fast = T.self == Float.self && (d.cell == .lstm || d.cell == .gru)
        for s in 0..<d.steps {
            let t = d.time(s)
            let a = xp + t * n * gw, g = gates + s * n * gw
            let hPrev = hs + s * n * p, hNext = hs + (s + 1) * n * p
            recurrent(m: n, hPrev, lda: p, hh, ldc: gw)
            for row in 0..<n { active[row] = d.active(row, t) ? 1 : 0 }
            // A row past its length keeps its state.
            for row in 0..<n where active[row] == 0 {
                (hNext + row * p).update(from: hPrev + row * p, count: p)
                if d.cell == .lstm { (cs + (s + 1) * n * h + row * h).update(from: cs + s * n * h + row * h, count: h) }
            }
            let lstmOut = wHR == nil ? hNext : rawStep
            if fast {
                if d.cell == .lstm {
                    ember_lstm_step_f32(n, h, floats(a), floats(hh), floats(cs + s * n * h), floats(g), floats(cs + (s + 1) * n * h), floats(lstmOut), active)
                } else {
                    ember_gru_step_f32(n, h, floats(a), floats(hh), bHH.map(floats), floats(hPrev), floats(g),
                                       floats(hhn + s * n * h), floats(hNext), active)
                }
            } else {
                for row in 0..<n where active[row] != 0 {
                    let ar = a + row * gw, hr = hh + row * gw, gr = g + row * gw
                    switch d.cell {
                    case .rnnTanh, .rnnRelu:
                        for j in 0..<h {
                            let v = ar[j] + hr[j]
                            let y = d.cell == .rnnTanh ? T.tanh(v) : Swift.max(v, 0)
                            gr[j] = y
                            hNext[row * p + j] = y
                        }
                    case .lstm:
                        let cPrev = cs + s * n * h + row * h, cNext = cs + (s + 1) * n * h + row * h
                        for j in 0..<h {
                            let i = logistic(ar[j] + hr[j]), f = logistic(ar[h + j] + hr[h + j])
                            let gg = T.tanh(ar[2 * h + j] + hr[2 * h + j]), o = logistic(ar[3 * h + j] + hr[3 * h + j])
                            let c = f * cPrev[j] + i * gg
                            (gr[j], gr[h + j], gr[2 * h + j], gr[3 * h + j]) = (i, f, gg, o)
                            cNext[j] = c
                            lstmOut[row * h + j] = o * T.tanh(c)
                        }
                    case .gru:
                        for j in 0..<h {
                            let hn = hr[2 * h + j] + (bHH?[2 * h + j] ?? 0)
                            let r = logistic(ar[j] + hr[j] + (bHH?[j] ?? 0))
                            let z = logistic(ar[h + j] + hr[h + j] + (bHH?[h + j] ?? 0))
                            let nn = T.tanh(ar[2 * h + j] + r * hn)
                            (gr[j], gr[h + j], gr[2 * h + j]) = (r, z, nn)
                            hhn[(s * n + row) * h + j] = hn
                            hNext[row * p + j] = (1 - z) * nn + z * hPrev[row * p + j]
                        }
                    }
                }
            }
            if let wHR {
                // The LSTM's projection: h = (o·tanh c) W_hrᵀ for the rows that took the step.
                gemm(false, true, m: n, n: p, k: h, rawStep, lda: h, wHR, ldb: h, beta: 0, projected, ldc: p)
                for row in 0..<n where active[row] != 0 {
                    (tape.raw + (s * n + row) * h).update(from: rawStep + row * h, count: h)
                    (hNext + row * p).update(from: projected + row * p, count: p)
                }
            }
            for row in 0..<n {
                let o = out + (t * n + row) * p
                if active[row] != 0 { o.update(from: hNext + row * p, count: p) } else { o.update(repeating: 0, count: p) }
            }
        }
        hN.update(from: hs + d.steps * n * p, count: n * p)
        if let cN { cN.update(from: cs + d.steps * n * h, count: n * h) }
        return tape
    }

    /// Backward through time from the gradients of the outputs `gOut [T, N, P]` and of the final
    /// states; writes the gradients of the input, the initial states and every weight.
    static func recurrentBackward<T: FloatElement>(_ d: RecurrentShape, tape: RecurrentTape<T>, x: UnsafePointer<T>,
                                                   wIH: UnsafePointer<T>, wHH: UnsafePointer<T>, wHR: UnsafePointer<T>?,
                                                   gOut: UnsafePointer<T>, gH: UnsafePointer<T>, gC: UnsafePointer<T>?,
                                                   dx: UnsafeMutablePointer<T>, dh0: UnsafeMutablePointer<T>, dc0: UnsafeMutablePointer<T>?,
                                                   dWIH: UnsafeMutablePointer<T>, dWHH: UnsafeMutablePointer<T>,
                                                   dBIH: UnsafeMutablePointer<T>, dBHH: UnsafeMutablePointer<T>, dWHR: UnsafeMutablePointer<T>?) {
        let (tn, n, h, p, gw) = (d.steps * d.batch, d.batch, d.hidden, d.output, d.gateWidth)
        let sizes = [tn * gw, tn * gw, n * h, n * p, n * p, n * p, n * h]
        // The two per-step gradient tapes are written whole unless lengths stop some rows.
        let scratch = sizes.enumerated().map { i, count in i < 2 && d.lengths == nil ? RecurrentTape<T>.uninitialized(count) : RecurrentTape<T>.zeroed(count) }
        let (dXP, dHH, dRaw, masked) = (scratch[0], scratch[1], scratch[2], scratch[3])
        var (dh, next) = (scratch[4], scratch[5])
        let dc = scratch[6]
        defer { for (b, count) in zip(scratch, sizes) { RecurrentTape.release(b, count) } }
        let recurrent = RecurrentProduct(wHH, n: p, k: gw, transposed: false)
        defer { recurrent.release() }
        dh.update(from: gH, count: n * p)
        if d.cell == .lstm, let gC { dc.update(from: gC, count: n * h) }
        let (gates, hs, cs, hhn) = (tape.gates, tape.hs, tape.cs, tape.hhn)
        if let dWHR { dWHR.update(repeating: 0, count: p * h) }
        var active = [UInt8](repeating: 1, count: n)
        let fast = T.self == Float.self && (d.cell == .lstm || d.cell == .gru)
        for s in stride(from: d.steps - 1, through: 0, by: -1) {
            let t = d.time(s)
            for row in 0..<n { active[row] = d.active(row, t) ? 1 : 0 }
            for row in 0..<n where active[row] != 0 { RecurrentTape.add(gOut + (t * n + row) * p, into: dh + row * p, p) }
            if let wHR, let dWHR {
                // Through the projection: d(raw) = dh W_hr, dW_hr += dhᵀ raw (inactive rows left out).
                gemm(false, false, m: n, n: h, k: p, dh, lda: p, wHR, ldb: h, beta: 0, dRaw, ldc: h)
                for row in 0..<n { for j in 0..<p { masked[row * p + j] = active[row] != 0 ? dh[row * p + j] : 0 } }
                gemm(true, false, m: p, n: h, k: n, masked, lda: p, tape.raw + s * n * h, ldb: h, beta: 1, dWHR, ldc: h)
            }
            let g = gates + s * n * gw, dxp = dXP + t * n * gw, dhh = dHH + s * n * gw
            let dy = wHR == nil ? dh : dRaw
            if fast {
                if d.cell == .lstm {
                    ember_lstm_step_backward_f32(n, h, floats(g), floats(cs + s * n * h), floats(cs + (s + 1) * n * h), floats(dy), floats(dc), floats(dxp), floats(dhh), active)
                } else {
                    ember_gru_step_backward_f32(n, h, floats(g), floats(hhn + s * n * h), floats(hs + s * n * p), floats(dh), floats(dxp), floats(dhh), active)
                }
            } else {
                for row in 0..<n where active[row] != 0 {
                    let gr = g + row * gw, pr = dxp + row * gw, qr = dhh + row * gw
                    switch d.cell {
                    case .rnnTanh, .rnnRelu:
                        for j in 0..<h {
                            let y = gr[j], dv = dh[row * p + j]
                            let pre = d.cell == .rnnTanh ? dv * (1 - y * y) : (y > 0 ? dv : 0)
                            (pr[j], qr[j]) = (pre, pre)
                        }
                    case .lstm:
                        let cPrev = cs + s * n * h + row * h, cNext = cs + (s + 1) * n * h + row * h
                        for j in 0..<h {
                            let (i, f, gg, o) = (gr[j], gr[h + j], gr[2 * h + j], gr[3 * h + j])
                            let tc = T.tanh(cNext[j])
                            let dv = dy[row * h + j]
                            let dcTotal = dc[row * h + j] + dv * o * (1 - tc * tc)
                            let di = dcTotal * gg * i * (1 - i), df = dcTotal * cPrev[j] * f * (1 - f)
                            let dg = dcTotal * i * (1 - gg * gg), dOut = dv * tc * o * (1 - o)
                            (pr[j], pr[h + j], pr[2 * h + j], pr[3 * h + j]) = (di, df, dg, dOut)
                            (qr[j], qr[h + j], qr[2 * h + j], qr[3 * h + j]) = (di, df, dg, dOut)
                            dc[row * h + j] = dcTotal * f
                        }
                    case .gru:
                        for j in 0..<h {
                            let (r, z, nn) = (gr[j], gr[h + j], gr[2 * h + j])
                            let hPrev = hs[s * n * p + row * p + j], dv = dh[row * p + j]
                            let dnPre = dv * (1 - z) * (1 - nn * nn)
                            let drPre = dnPre * hhn[(s * n + row) * h + j] * r * (1 - r)
                            let dzPre = dv * (hPrev - nn) * z * (1 - z)
                            (pr[j], pr[h + j], pr[2 * h + j]) = (drPre, dzPre, dnPre)
                            (qr[j], qr[h + j], qr[2 * h + j]) = (drPre, dzPre, dnPre * r)
                        }
                    }
                }
            }
            // dh before the step: through W_hh for the rows that took it (plus GRU's z·dh), as is otherwise.
            recurrent(m: n, dhh, lda: gw, next, ldc: p)
            for row in 0..<n {
                if active[row] != 0 {
                    if d.cell == .gru { for j in 0..<p { next[row * p + j] += dh[row * p + j] * g[row * gw + h + j] } }
                } else {
                    (next + row * p).update(from: dh + row * p, count: p)
                }
            }
            swap(&dh, &next)
        }
        dh0.update(from: dh, count: n * p)
        if let dc0 { dc0.update(from: dc, count: n * h) }
        // The weights' gradients, each one product over every step.
        gemm(true, false, m: gw, n: d.input, k: tn, dXP, lda: gw, x, ldb: d.input, beta: 0, dWIH, ldc: d.input)
        gemm(true, false, m: gw, n: p, k: tn, dHH, lda: gw, hs, ldb: p, beta: 0, dWHH, ldc: p)
        gemm(false, false, m: tn, n: d.input, k: gw, dXP, lda: gw, wIH, ldb: d.input, beta: 0, dx, ldc: d.input)
        dBIH.update(repeating: 0, count: gw)
        dBHH.update(repeating: 0, count: gw)
        for r in 0..<tn {
            RecurrentTape.add(dXP + r * gw, into: dBIH, gw)
            RecurrentTape.add(dHH + r * gw, into: dBHH, gw)
        }
    }
}
