import CEmberSupport

extension Kernels {
    @inline(__always) static func logistic<T: FloatElement>(_ v: T) -> T { 1 / (1 + T.exp(-v)) }

    /// Forward: `out [T, N, P]` (by time; `[N, T, P]` when `d.batchFirstOutput`), final `h [N, P]`
    /// and `c [N, H]`, and the tape.
    static func recurrentForward<T: FloatElement>(_ d: RecurrentShape, x: UnsafePointer<T>, h0: UnsafePointer<T>, c0: UnsafePointer<T>?,
                                                  wIH: UnsafePointer<T>, wHH: UnsafePointer<T>, bIH: UnsafePointer<T>?, bHH: UnsafePointer<T>?,
                                                  wHR: UnsafePointer<T>?, out: UnsafeMutablePointer<T>, hN: UnsafeMutablePointer<T>,
                                                  cN: UnsafeMutablePointer<T>?) -> RecurrentTape<T> {
        let (tn, n, h, p, gw) = (d.steps * d.batch, d.batch, d.hidden, d.output, d.gateWidth)
        let sizes = [tn * gw, n * gw, n * h, n * p]
        let scratch = sizes.map { RecurrentTape<T>.uninitialized($0) }
        let (xp, hh, rawStep, projected) = (scratch[0], scratch[1], scratch[2], scratch[3])
        rawStep.initialize(repeating: 0, count: n * h)
        defer { for (b, count) in zip(scratch, sizes) { RecurrentTape.release(b, count) } }
        let tape = RecurrentTape<T>(d, projects: wHR != nil)
        // Every step's input projection in one product; under bf16 the input is rounded once here
        // for this product and dW_ih's in backward. Both biases where they simply add are added
        // to it step by step, by the gates.
        if let r = tape.roundedX { roundForProducts(x, count: tn * d.input, into: r.bfloat16Pointer()) }
        gemm(false, true, m: tn, n: gw, k: d.input, ProductOperand(x, rounded: tape.roundedX?.bfloat16Pointer()), lda: d.input,
             ProductOperand(wIH), ldb: d.input, beta: 0, xp, ldc: gw)
        let hasBias = bIH != nil || (bHH != nil && d.cell != .gru)
        let bias = hasBias ? (0..<gw).map { j in (bIH?[j] ?? 0) + (d.cell != .gru ? bHH?[j] ?? 0 : 0) } : []
        let recurrent = RecurrentProduct(wHH, m: n, n: gw, k: p, transposed: true)
        defer { recurrent.release() }
        let (hs, cs) = (tape.hs, tape.cs)
        hs.update(from: h0, count: n * p)
        if d.cell == .lstm { if let c0 { cs.update(from: c0, count: n * h) } else { cs.update(repeating: 0, count: n * h) } }
        var active = [UInt8](repeating: 1, count: n)
        for s in 0..<d.steps {
            let t = d.time(s)
            let hPrev = hs + s * n * p, hNext = hs + (s + 1) * n * p
            // The state as this step's product rounds it is the one dW_hh's product needs.
            if let r = tape.roundedHs { roundForProducts(hPrev, count: n * p, into: r.bfloat16Pointer(s * n * p)) }
            recurrent(hPrev, roundedA: tape.roundedHs?.bfloat16Pointer(s * n * p), into: hh)
            for row in 0..<n { active[row] = d.active(row, t) ? 1 : 0 }
            // A row past its length keeps its state.
            for row in 0..<n where active[row] == 0 {
                (hNext + row * p).update(from: hPrev + row * p, count: p)
                if d.cell == .lstm { (cs + (s + 1) * n * h + row * h).update(from: cs + s * n * h + row * h, count: h) }
            }
            bias.withUnsafeBufferPointer { b in
                forwardGates(d, step: s, tape: tape, a: xp + t * n * gw, bias: hasBias ? b.baseAddress : nil, hh: hh, bHH: bHH,
                             lstmOut: wHR == nil ? hNext : rawStep, active: active)
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
                let o = out + d.outputRow(t, row) * p
                if active[row] != 0 { o.update(from: hNext + row * p, count: p) } else { o.update(repeating: 0, count: p) }
            }
        }
        hN.update(from: hs + d.steps * n * p, count: n * p)
        if let cN { cN.update(from: cs + d.steps * n * h, count: n * h) }
        return tape
    }

    /// Step `s`'s gates for the active rows, from the input projection `a`, the `bias` added to
    /// it (nil: none) and `hh = h W_hhᵀ`, onto the tape (gates, the next `h` or the LSTM's
    /// `o·tanh c` into `lstmOut`, cells, GRU's `W_hn h + b_hn`). Float32 LSTM and GRU run in C
    /// (Activations.c, vectorised; the LSTM's adds the bias as it goes); the loops are the same
    /// arithmetic for float64 (fixtures, gradcheck) and for the plain RNN.
    private static func forwardGates<T: FloatElement>(_ d: RecurrentShape, step s: Int, tape: RecurrentTape<T>, a: UnsafeMutablePointer<T>,
                                                      bias: UnsafePointer<T>?, hh: UnsafeMutablePointer<T>, bHH: UnsafePointer<T>?,
                                                      lstmOut: UnsafeMutablePointer<T>, active: [UInt8]) {
        let (n, h, p, gw) = (d.batch, d.hidden, d.output, d.gateWidth)
        let g = tape.gates + s * n * gw, hPrev = tape.hs + s * n * p, hNext = tape.hs + (s + 1) * n * p
        let cPrev = tape.cs + s * n * h, cNext = tape.cs + (s + 1) * n * h, hhn = tape.hhn + s * n * h
        if T.self == Float.self && d.cell == .lstm {
            return ember_lstm_step_f32(n, h, floats(a), bias.map(floats), floats(hh), floats(cPrev), floats(g), floats(cNext),
                                       floats(lstmOut), active)
        }
        if let bias { for row in 0..<n where active[row] != 0 { RecurrentTape.add(bias, into: a + row * gw, gw) } }
        if T.self == Float.self && d.cell == .gru {
            return ember_gru_step_f32(n, h, floats(a), floats(hh), bHH.map(floats), floats(hPrev), floats(g), floats(hhn), floats(hNext), active)
        }
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
                for j in 0..<h {
                    let i = logistic(ar[j] + hr[j]), f = logistic(ar[h + j] + hr[h + j])
                    let gg = T.tanh(ar[2 * h + j] + hr[2 * h + j]), o = logistic(ar[3 * h + j] + hr[3 * h + j])
                    let c = f * cPrev[row * h + j] + i * gg
                    (gr[j], gr[h + j], gr[2 * h + j], gr[3 * h + j]) = (i, f, gg, o)
                    cNext[row * h + j] = c
                    lstmOut[row * h + j] = o * T.tanh(c)
                }
            case .gru:
                for j in 0..<h {
                    let hn = hr[2 * h + j] + (bHH?[2 * h + j] ?? 0)
                    let r = logistic(ar[j] + hr[j] + (bHH?[j] ?? 0))
                    let z = logistic(ar[h + j] + hr[h + j] + (bHH?[h + j] ?? 0))
                    let nn = T.tanh(ar[2 * h + j] + r * hn)
                    (gr[j], gr[h + j], gr[2 * h + j]) = (r, z, nn)
                    hhn[row * h + j] = hn
                    hNext[row * p + j] = (1 - z) * nn + z * hPrev[row * p + j]
                }
            }
        }
    }
}
