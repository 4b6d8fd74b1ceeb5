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
/// unprojected `o·tanh(c)` `[T, N, H]` when it projects.
struct RecurrentTape<T: FloatElement> {
    var gates: [T], hs: [T], cs: [T], hhn: [T], raw: [T]
}

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
        var xp = [T](repeating: 0, count: tn * gw)
        xp.withUnsafeMutableBufferPointer { gemm(false, true, m: tn, n: gw, k: d.input, x, lda: d.input, wIH, ldb: d.input, beta: 0, $0.baseAddress!, ldc: gw) }
        for r in 0..<tn {
            for j in 0..<gw {
                var b: T = bIH?[j] ?? 0
                if d.cell != .gru { b += bHH?[j] ?? 0 }
                xp[r * gw + j] += b
            }
        }
        var tape = RecurrentTape<T>(gates: [T](repeating: 0, count: tn * gw), hs: [T](repeating: 0, count: (d.steps + 1) * n * p),
                                    cs: d.cell == .lstm ? [T](repeating: 0, count: (d.steps + 1) * n * h) : [],
                                    hhn: d.cell == .gru ? [T](repeating: 0, count: tn * h) : [],
                                    raw: wHR != nil ? [T](repeating: 0, count: tn * h) : [])
        for i in 0..<(n * p) { tape.hs[i] = h0[i] }
        if d.cell == .lstm { for i in 0..<(n * h) { tape.cs[i] = c0?[i] ?? 0 } }
        var hh = [T](repeating: 0, count: n * gw), rawStep = [T](repeating: 0, count: n * h), projected = [T](repeating: 0, count: n * p)
        for s in 0..<d.steps {
            let t = d.time(s)
            tape.hs.withUnsafeBufferPointer { hs in
                hh.withUnsafeMutableBufferPointer { gemm(false, true, m: n, n: gw, k: p, hs.baseAddress! + s * n * p, lda: p, wHH, ldb: p, beta: 0, $0.baseAddress!, ldc: gw) }
            }
            for row in 0..<n {
                let prev = s * n * p + row * p, next = (s + 1) * n * p + row * p
                let outRow = (t * n + row) * p
                guard d.active(row, t) else {
                    for j in 0..<p { tape.hs[next + j] = tape.hs[prev + j]; out[outRow + j] = 0 }
                    if d.cell == .lstm { for j in 0..<h { tape.cs[(s + 1) * n * h + row * h + j] = tape.cs[s * n * h + row * h + j] } }
                    continue
                }
                let a = (t * n + row) * gw, g = (s * n + row) * gw, hr = row * gw
                switch d.cell {
                case .rnnTanh, .rnnRelu:
                    for j in 0..<h {
                        let v = xp[a + j] + hh[hr + j]
                        let y = d.cell == .rnnTanh ? T.tanh(v) : Swift.max(v, 0)
                        tape.gates[g + j] = y
                        tape.hs[next + j] = y
                    }
                case .lstm:
                    let cPrev = s * n * h + row * h, cNext = (s + 1) * n * h + row * h
                    for j in 0..<h {
                        let i = logistic(xp[a + j] + hh[hr + j]), f = logistic(xp[a + h + j] + hh[hr + h + j])
                        let gg = T.tanh(xp[a + 2 * h + j] + hh[hr + 2 * h + j]), o = logistic(xp[a + 3 * h + j] + hh[hr + 3 * h + j])
                        let c = f * tape.cs[cPrev + j] + i * gg
                        (tape.gates[g + j], tape.gates[g + h + j], tape.gates[g + 2 * h + j], tape.gates[g + 3 * h + j]) = (i, f, gg, o)
                        tape.cs[cNext + j] = c
                        let y = o * T.tanh(c)
                        if wHR == nil { tape.hs[next + j] = y } else { rawStep[row * h + j] = y }
                    }
                case .gru:
                    for j in 0..<h {
                        let hn = hh[hr + 2 * h + j] + (bHH?[2 * h + j] ?? 0)
                        let r = logistic(xp[a + j] + hh[hr + j] + (bHH?[j] ?? 0))
                        let z = logistic(xp[a + h + j] + hh[hr + h + j] + (bHH?[h + j] ?? 0))
                        let nn = T.tanh(xp[a + 2 * h + j] + r * hn)
                        (tape.gates[g + j], tape.gates[g + h + j], tape.gates[g + 2 * h + j]) = (r, z, nn)
                        tape.hhn[(s * n + row) * h + j] = hn
                        tape.hs[next + j] = (1 - z) * nn + z * tape.hs[prev + j]
                    }
                }
            }
            if let wHR {
                // The LSTM's projection: h = (o·tanh c) W_hrᵀ for the rows that took the step.
                gemm(false, true, m: n, n: p, k: h, rawStep, lda: h, wHR, ldb: h, beta: 0, &projected, ldc: p)
                for row in 0..<n where d.active(row, t) {
                    for j in 0..<h { tape.raw[(s * n + row) * h + j] = rawStep[row * h + j] }
                    for j in 0..<p { tape.hs[(s + 1) * n * p + row * p + j] = projected[row * p + j] }
                }
            }
            for row in 0..<n where d.active(row, t) {
                for j in 0..<p { out[(t * n + row) * p + j] = tape.hs[(s + 1) * n * p + row * p + j] }
            }
        }
        for i in 0..<(n * p) { hN[i] = tape.hs[d.steps * n * p + i] }
        if let cN { for i in 0..<(n * h) { cN[i] = tape.cs[d.steps * n * h + i] } }
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
        var dXP = [T](repeating: 0, count: tn * gw), dHH = [T](repeating: 0, count: tn * gw)
        var dh = Array(UnsafeBufferPointer(start: gH, count: n * p))
        var dc = d.cell == .lstm ? (gC.map { Array(UnsafeBufferPointer(start: $0, count: n * h)) } ?? [T](repeating: 0, count: n * h)) : []
        var dRaw = [T](repeating: 0, count: n * h), next = [T](repeating: 0, count: n * p)
        if let dWHR { dWHR.update(repeating: 0, count: p * h) }
        for s in stride(from: d.steps - 1, through: 0, by: -1) {
            let t = d.time(s)
            for row in 0..<n where d.active(row, t) {
                for j in 0..<p { dh[row * p + j] += gOut[(t * n + row) * p + j] }
            }
            if let wHR, let dWHR {
                // Through the projection: d(raw) = dh W_hr, dW_hr += dhᵀ raw (inactive rows of raw are 0).
                gemm(false, false, m: n, n: h, k: p, dh, lda: p, wHR, ldb: h, beta: 0, &dRaw, ldc: h)
                tape.raw.withUnsafeBufferPointer { raw in
                    var masked = dh
                    for row in 0..<n where !d.active(row, t) { for j in 0..<p { masked[row * p + j] = 0 } }
                    gemm(true, false, m: p, n: h, k: n, masked, lda: p, raw.baseAddress! + s * n * h, ldb: h, beta: 1, dWHR, ldc: h)
                }
            }
            for row in 0..<n where d.active(row, t) {
                let a = (t * n + row) * gw, g = (s * n + row) * gw
                switch d.cell {
                case .rnnTanh, .rnnRelu:
                    for j in 0..<h {
                        let y = tape.gates[g + j], dy = dh[row * p + j]
                        let pre = d.cell == .rnnTanh ? dy * (1 - y * y) : (y > 0 ? dy : 0)
                        dXP[a + j] = pre
                        dHH[g + j] = pre
                    }
                case .lstm:
                    let cPrev = s * n * h + row * h, cNext = (s + 1) * n * h + row * h
                    for j in 0..<h {
                        let (i, f, gg, o) = (tape.gates[g + j], tape.gates[g + h + j], tape.gates[g + 2 * h + j], tape.gates[g + 3 * h + j])
                        let tc = T.tanh(tape.cs[cNext + j])
                        let dy = wHR == nil ? dh[row * p + j] : dRaw[row * h + j]
                        let dcTotal = dc[row * h + j] + dy * o * (1 - tc * tc)
                        let di = dcTotal * gg * i * (1 - i), df = dcTotal * tape.cs[cPrev + j] * f * (1 - f)
                        let dg = dcTotal * i * (1 - gg * gg), dOut = dy * tc * o * (1 - o)
                        (dXP[a + j], dXP[a + h + j], dXP[a + 2 * h + j], dXP[a + 3 * h + j]) = (di, df, dg, dOut)
                        (dHH[g + j], dHH[g + h + j], dHH[g + 2 * h + j], dHH[g + 3 * h + j]) = (di, df, dg, dOut)
                        dc[row * h + j] = dcTotal * f
                    }
                case .gru:
                    for j in 0..<h {
                        let (r, z, nn) = (tape.gates[g + j], tape.gates[g + h + j], tape.gates[g + 2 * h + j])
                        let hPrev = tape.hs[s * n * p + row * p + j], dy = dh[row * p + j]
                        let dnPre = dy * (1 - z) * (1 - nn * nn)
                        let drPre = dnPre * tape.hhn[(s * n + row) * h + j] * r * (1 - r)
                        let dzPre = dy * (hPrev - nn) * z * (1 - z)
                        (dXP[a + j], dXP[a + h + j], dXP[a + 2 * h + j]) = (drPre, dzPre, dnPre)
                        (dHH[g + j], dHH[g + h + j], dHH[g + 2 * h + j]) = (drPre, dzPre, dnPre * r)
                    }
                }
            }
            // dh before the step: through W_hh for the rows that took it (plus GRU's z·dh), as is otherwise.
            dHH.withUnsafeBufferPointer { dhh in
                gemm(false, false, m: n, n: p, k: gw, dhh.baseAddress! + s * n * gw, lda: gw, wHH, ldb: p, beta: 0, &next, ldc: p)
            }
            for row in 0..<n {
                if d.active(row, t) {
                    if d.cell == .gru { for j in 0..<p { next[row * p + j] += dh[row * p + j] * tape.gates[(s * n + row) * gw + h + j] } }
                } else {
                    for j in 0..<p { next[row * p + j] = dh[row * p + j] }
                }
            }
            swap(&dh, &next)
        }
        for i in 0..<(n * p) { dh0[i] = dh[i] }
        if let dc0 { for i in 0..<(n * h) { dc0[i] = dc.isEmpty ? 0 : dc[i] } }
        // The weights' gradients, each one product over every step.
        gemm(true, false, m: gw, n: d.input, k: tn, dXP, lda: gw, x, ldb: d.input, beta: 0, dWIH, ldc: d.input)
        tape.hs.withUnsafeBufferPointer { hs in
            gemm(true, false, m: gw, n: p, k: tn, dHH, lda: gw, hs.baseAddress!, ldb: p, beta: 0, dWHH, ldc: p)
        }
        gemm(false, false, m: tn, n: d.input, k: gw, dXP, lda: gw, wIH, ldb: d.input, beta: 0, dx, ldc: d.input)
        for j in 0..<gw { dBIH[j] = 0; dBHH[j] = 0 }
        for r in 0..<tn {
            for j in 0..<gw { dBIH[j] += dXP[r * gw + j]; dBHH[j] += dHH[r * gw + j] }
        }
    }
}
