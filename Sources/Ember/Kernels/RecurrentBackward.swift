import CEmberSupport

extension Kernels {
    /// Backward through time from the gradients of the outputs `gOut [T, N, P]` (`[N, T, P]` when
    /// `d.batchFirstOutput`) and of the final
    /// states; writes the gradients of the input, the initial states and every weight.
    static func recurrentBackward<T: FloatElement>(_ d: RecurrentShape, tape: RecurrentTape<T>, x: UnsafePointer<T>,
                                                   wIH: UnsafePointer<T>, wHH: UnsafePointer<T>, wHR: UnsafePointer<T>?,
                                                   gOut: UnsafePointer<T>, gH: UnsafePointer<T>, gC: UnsafePointer<T>?,
                                                   dx: UnsafeMutablePointer<T>, dh0: UnsafeMutablePointer<T>, dc0: UnsafeMutablePointer<T>?,
                                                   dWIH: UnsafeMutablePointer<T>, dWHH: UnsafeMutablePointer<T>,
                                                   dBIH: UnsafeMutablePointer<T>, dBHH: UnsafeMutablePointer<T>, dWHR: UnsafeMutablePointer<T>?) {
        let (tn, n, h, p, gw) = (d.steps * d.batch, d.batch, d.hidden, d.output, d.gateWidth)
        // Each step's gate gradients go towards the input projection (dXP, by time) and towards
        // W_hh (dHH, by step). They are equal for an LSTM or a plain RNN (GRU's n gate differs),
        // and in the same order when steps run forward in time: then one tape serves both.
        let shared = d.cell != .gru && !d.reverse
        let sizes = [tn * gw, shared ? 0 : tn * gw, n * h, n * p, n * p, n * p, n * h]
        // The per-step gradient tapes are written whole unless lengths stop some rows.
        let scratch = sizes.enumerated().map { i, count in i < 2 && d.lengths == nil ? RecurrentTape<T>.uninitialized(count) : RecurrentTape<T>.zeroed(count) }
        let (dXP, dRaw, masked) = (scratch[0], scratch[2], scratch[3])
        let dHH = shared ? dXP : scratch[1]
        var (dh, next) = (scratch[4], scratch[5])
        let dc = scratch[6]
        defer { for (b, count) in zip(scratch, sizes) { RecurrentTape.release(b, count) } }
        // Under bf16 each step's gradient towards W_hh is rounded once: for the step's product and
        // for dW_hh's (and, shared, dW_ih's and dx's) after the loop.
        let roundedSteps = bfloat16Buffer([tn * gw], for: T.self)
        defer { withExtendedLifetime(roundedSteps) {} }
        let recurrent = RecurrentProduct(wHH, m: n, n: p, k: gw, transposed: false)
        defer { recurrent.release() }
        dh.update(from: gH, count: n * p)
        if d.cell == .lstm, let gC { dc.update(from: gC, count: n * h) }
        if let dWHR { dWHR.update(repeating: 0, count: p * h) }
        // A float32 LSTM without projection runs its steps in one C kernel that also adds the
        // output's gradient and sums the bias gradient as it goes (two passes fewer per step).
        let fused = T.self == Float.self && d.cell == .lstm && wHR == nil
        if fused { dBIH.update(repeating: 0, count: gw) }
        var active = [UInt8](repeating: 1, count: n)
        for s in stride(from: d.steps - 1, through: 0, by: -1) {
            let t = d.time(s)
            for row in 0..<n { active[row] = d.active(row, t) ? 1 : 0 }
            if !fused { for row in 0..<n where active[row] != 0 { RecurrentTape.add(gOut + d.outputRow(t, row) * p, into: dh + row * p, p) } }
            if let wHR, let dWHR { projectionBackward(d, step: s, tape: tape, dh: dh, wHR: wHR, dRaw: dRaw, dWHR: dWHR, masked: masked, active: active) }
            let dhh = dHH + s * n * gw
            backwardGates(d, step: s, tape: tape, dy: wHR == nil ? dh : dRaw, dh: dh, dc: dc, dxp: dXP + t * n * gw,
                          dhh: shared ? nil : dhh, active: active,
                          fusedInto: fused ? (gOut + d.outputRow(t, 0) * p, d.outputRowStride * p, dBIH) : nil)
            if let r = roundedSteps { roundForProducts(dhh, count: n * gw, into: r.bfloat16Pointer(s * n * gw)) }
            // dh before the step: through W_hh (`carryPastStep` finishes it).
            recurrent(dhh, roundedA: roundedSteps?.bfloat16Pointer(s * n * gw), into: next)
            carryPastStep(d, step: s, tape: tape, dh: dh, into: next, active: active)
            swap(&dh, &next)
        }
        dh0.update(from: dh, count: n * p)
        if let dc0 { dc0.update(from: dc, count: n * h) }
        let steps = roundedSteps?.bfloat16Pointer()
        let gx = ProductOperand(dXP, rounded: shared ? steps : nil), gh = ProductOperand(dHH, rounded: steps)
        gradientsOverAllSteps(d, tape: tape, gx: gx, gh: gh, x: x, wIH: wIH, dx: dx, dWIH: dWIH, dWHH: dWHH)
        if !fused { sumRows(dXP, rows: tn, width: gw, into: dBIH) }
        // An LSTM's (or plain RNN's) two bias gradients are the same sum; only GRU's differ.
        if d.cell != .gru { dBHH.update(from: dBIH, count: gw) } else { sumRows(dHH, rows: tn, width: gw, into: dBHH) }
    }

    /// After the loop, each one product over every step: dW_ih and dx from the gate gradients
    /// towards the input projection (`gx`), dW_hh from those towards W_hh (`gh`) and the states.
    private static func gradientsOverAllSteps<T: FloatElement>(_ d: RecurrentShape, tape: RecurrentTape<T>, gx: ProductOperand<T>, gh: ProductOperand<T>,
                                                     x: UnsafePointer<T>, wIH: UnsafePointer<T>, dx: UnsafeMutablePointer<T>,
                                                     dWIH: UnsafeMutablePointer<T>, dWHH: UnsafeMutablePointer<T>) {
        let (tn, p, gw) = (d.steps * d.batch, d.output, d.gateWidth)
        gemm(true, false, m: gw, n: d.input, k: tn, gx, lda: gw, ProductOperand(x, rounded: tape.roundedX?.bfloat16Pointer()), ldb: d.input,
             beta: 0, dWIH, ldc: d.input)
        gemm(true, false, m: gw, n: p, k: tn, gh, lda: gw, ProductOperand(tape.hs, rounded: tape.roundedHs?.bfloat16Pointer()), ldb: p, beta: 0, dWHH, ldc: p)
        gemm(false, false, m: tn, n: d.input, k: gw, gx, lda: gw, ProductOperand(wIH), ldb: d.input, beta: 0, dx, ldc: d.input)
    }

    /// Step `s` back through the LSTM's projection: d(raw) = dh W_hr into `dRaw`, and
    /// dW_hr += dhᵀ raw over the rows that took the step (`masked`: scratch for those rows' dh).
    private static func projectionBackward<T: FloatElement>(_ d: RecurrentShape, step s: Int, tape: RecurrentTape<T>, dh: UnsafeMutablePointer<T>,
                                                            wHR: UnsafePointer<T>, dRaw: UnsafeMutablePointer<T>, dWHR: UnsafeMutablePointer<T>,
                                                            masked: UnsafeMutablePointer<T>, active: [UInt8]) {
        let (n, h, p) = (d.batch, d.hidden, d.output)
        gemm(false, false, m: n, n: h, k: p, dh, lda: p, wHR, ldb: h, beta: 0, dRaw, ldc: h)
        for row in 0..<n { for j in 0..<p { masked[row * p + j] = active[row] != 0 ? dh[row * p + j] : 0 } }
        gemm(true, false, m: p, n: h, k: n, masked, lda: p, tape.raw + s * n * h, ldb: h, beta: 1, dWHR, ldc: h)
    }

    /// dh before step `s`, given `next` = (the step's gate gradients) W_hh: plus GRU's z·dh for
    /// the rows that took the step; a row that did not keeps its dh as it is.
    private static func carryPastStep<T: FloatElement>(_ d: RecurrentShape, step s: Int, tape: RecurrentTape<T>, dh: UnsafeMutablePointer<T>,
                                                       into next: UnsafeMutablePointer<T>, active: [UInt8]) {
        let (n, h, p, gw) = (d.batch, d.hidden, d.output, d.gateWidth)
        let g = tape.gates + s * n * gw
        for row in 0..<n {
            if active[row] != 0 {
                if d.cell == .gru { for j in 0..<p { next[row * p + j] += dh[row * p + j] * g[row * gw + h + j] } }
            } else {
                (next + row * p).update(from: dh + row * p, count: p)
            }
        }
    }

    /// `into[j] = Σ_r rows[r][j]`: a bias's gradient from every step's gate gradients.
    private static func sumRows<T: FloatElement>(_ rows: UnsafePointer<T>, rows count: Int, width: Int, into: UnsafeMutablePointer<T>) {
        into.update(repeating: 0, count: width)
        for r in 0..<count { RecurrentTape.add(rows + r * width, into: into, width) }
    }

    /// Step `s`'s gate gradients for the active rows from `dy` (the gradient of its output) and
    /// the running cell gradient `dc`: into `dxp` (towards the input projection) and `dhh` (towards
    /// W_hh; nil when the two are the same tape). Float32 LSTM and GRU run in C; the float32
    /// LSTM's kernel can also add the output gradient (`fusedInto`: its step's first row and the
    /// rows' stride) and sum the bias gradient as it goes.
    private static func backwardGates<T: FloatElement>(_ d: RecurrentShape, step s: Int, tape: RecurrentTape<T>, dy: UnsafeMutablePointer<T>,
                                                       dh: UnsafeMutablePointer<T>, dc: UnsafeMutablePointer<T>, dxp: UnsafeMutablePointer<T>,
                                                       dhh: UnsafeMutablePointer<T>?, active: [UInt8],
                                                       fusedInto fused: (gOut: UnsafePointer<T>, stride: Int, bias: UnsafeMutablePointer<T>)? = nil) {
        let (n, h, p, gw) = (d.batch, d.hidden, d.output, d.gateWidth)
        let g = tape.gates + s * n * gw, cPrev = tape.cs + s * n * h, cNext = tape.cs + (s + 1) * n * h
        let hPrev = tape.hs + s * n * p, hhn = tape.hhn + s * n * h
        if T.self == Float.self && d.cell == .lstm {
            return ember_lstm_step_backward_f32(n, h, floats(g), floats(cPrev), floats(cNext), floats(dy), fused.map { floats($0.gOut) },
                                                fused?.stride ?? 0, floats(dc), floats(dxp), dhh.map(floats), fused.map { floats($0.bias) }, active)
        }
        if T.self == Float.self && d.cell == .gru, let dhh {
            return ember_gru_step_backward_f32(n, h, floats(g), floats(hhn), floats(hPrev), floats(dh), floats(dxp), floats(dhh), active)
        }
        let q = dhh ?? dxp
        for row in 0..<n where active[row] != 0 {
            let gr = g + row * gw, pr = dxp + row * gw, qr = q + row * gw
            switch d.cell {
            case .rnnTanh, .rnnRelu:
                for j in 0..<h {
                    let y = gr[j], dv = dh[row * p + j]
                    let pre = d.cell == .rnnTanh ? dv * (1 - y * y) : (y > 0 ? dv : 0)
                    (pr[j], qr[j]) = (pre, pre)
                }
            case .lstm:
                for j in 0..<h {
                    let (i, f, gg, o) = (gr[j], gr[h + j], gr[2 * h + j], gr[3 * h + j])
                    let tc = T.tanh(cNext[row * h + j])
                    let dv = dy[row * h + j]
                    let dcTotal = dc[row * h + j] + dv * o * (1 - tc * tc)
                    let di = dcTotal * gg * i * (1 - i), df = dcTotal * cPrev[row * h + j] * f * (1 - f)
                    let dg = dcTotal * i * (1 - gg * gg), dOut = dv * tc * o * (1 - o)
                    (pr[j], pr[h + j], pr[2 * h + j], pr[3 * h + j]) = (di, df, dg, dOut)
                    (qr[j], qr[h + j], qr[2 * h + j], qr[3 * h + j]) = (di, df, dg, dOut)
                    dc[row * h + j] = dcTotal * f
                }
            case .gru:
                for j in 0..<h {
                    let (r, z, nn) = (gr[j], gr[h + j], gr[2 * h + j])
                    let hPrevJ = hPrev[row * p + j], dv = dh[row * p + j]
                    let dnPre = dv * (1 - z) * (1 - nn * nn)
                    let drPre = dnPre * hhn[row * h + j] * r * (1 - r)
                    let dzPre = dv * (hPrevJ - nn) * z * (1 - z)
                    (pr[j], pr[h + j], pr[2 * h + j]) = (drPre, dzPre, dnPre)
                    (qr[j], qr[h + j], qr[2 * h + j]) = (drPre, dzPre, dnPre * r)
                }
            }
        }
    }
}
