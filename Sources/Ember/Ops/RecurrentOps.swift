/// A whole recurrent layer (one direction) as one differentiable op over the sequence: the
/// graph gets one node for it, whose backward runs backward through time in the kernel
/// (Kernels/RecurrentKernels.swift).
extension Tensor {
    /// `x [T, N, I]`, `h0 [N, P]` (and `c0 [N, H]` for an LSTM), weights as PyTorch stores them
    /// (`wIH [G·H, I]`, `wHH [G·H, P]`, biases `[G·H]`, the LSTM projection `wHR [P, H]`).
    /// Returns the outputs `[T, N, P]` (zero past a row's length; `[N, T, P]` with
    /// `batchFirstOutput`) and the final states.
    static func recurrentLayer(_ cell: RecurrentCell, _ x: Tensor, h0: Tensor, c0: Tensor?, wIH: Tensor, wHH: Tensor,
                               bIH: Tensor?, bHH: Tensor?, wHR: Tensor?, lengths: [Int]?, reverse: Bool,
                               batchFirstOutput: Bool = false) -> (output: Tensor, h: Tensor, c: Tensor?) {
        let (steps, batch, input) = (x.shape[0], x.shape[1], x.shape[2])
        let hidden = wIH.shape[0] / cell.gates, outWidth = wHR?.shape[0] ?? hidden
        let d = RecurrentShape(steps: steps, batch: batch, input: input, hidden: hidden, output: outWidth, cell: cell, reverse: reverse,
                               lengths: lengths, batchFirstOutput: batchFirstOutput)
        let dtype = x.dtype
        let (x, h0, c0) = (x.to(dtype), h0.to(dtype), c0?.to(dtype))
        let (wIH, wHH, bIH, bHH, wHR) = (wIH.to(dtype), wHH.to(dtype), bIH?.to(dtype), bHH?.to(dtype), wHR?.to(dtype))
        // Outputs, final h and final c, back to back in one tensor: the op's single result.
        let sizes = [steps * batch * outWidth, batch * outWidth, cell == .lstm ? batch * hidden : 0]
        let packed = Tensor(uninitializedShape: [sizes.reduce(0, +)], dtype: dtype)
        func run<T: FloatElement>(_ type: T.Type) -> Any {
            let z = packed.pointer(T.self)
            return Kernels.recurrentForward(d, x: x.pointer(T.self), h0: h0.pointer(T.self), c0: c0.map { UnsafePointer($0.pointer(T.self)) },
                                            wIH: wIH.pointer(T.self), wHH: wHH.pointer(T.self), bIH: bIH.map { UnsafePointer($0.pointer(T.self)) },
                                            bHH: bHH.map { UnsafePointer($0.pointer(T.self)) }, wHR: wHR.map { UnsafePointer($0.pointer(T.self)) },
                                            out: z, hN: z + sizes[0], cN: cell == .lstm ? z + sizes[0] + sizes[1] : nil)
        }
        require(dtype.isFloatingPoint, "recurrent layers need floating-point input, got \(dtype)")
        let tape = dtype == .float64 ? run(Double.self) : run(Float.self)
        let present: [Tensor?] = [x, h0, c0, wIH, wHH, bIH, bHH, wHR]
        let inputs = present.compactMap { $0 }
        let result = packed.recordOp("RecurrentBackward", inputs) { g in
            require(!GradMode.isEnabled, "second derivatives of recurrent layers (createGraph through RNN, LSTM or GRU) are not supported")
            var grads: [Tensor] = [Tensor(uninitializedShape: x.shape, dtype: dtype), Tensor(uninitializedShape: h0.shape, dtype: dtype)]
            if let c0 { grads.append(Tensor(uninitializedShape: c0.shape, dtype: dtype)) }
            let dWIH = Tensor(uninitializedShape: wIH.shape, dtype: dtype), dWHH = Tensor(uninitializedShape: wHH.shape, dtype: dtype)
            let dB = Tensor(uninitializedShape: [wIH.shape[0]], dtype: dtype), dBH = Tensor(uninitializedShape: [wIH.shape[0]], dtype: dtype)
            let dWHR = wHR.map { Tensor(uninitializedShape: $0.shape, dtype: dtype) }
            func back<T: FloatElement>(_ type: T.Type) {
                let gz = g.pointer(T.self)
                Kernels.recurrentBackward(d, tape: tape as! RecurrentTape<T>, x: x.pointer(T.self), wIH: wIH.pointer(T.self), wHH: wHH.pointer(T.self),
                                          wHR: wHR.map { UnsafePointer($0.pointer(T.self)) }, gOut: gz, gH: gz + sizes[0],
                                          gC: cell == .lstm ? UnsafePointer(gz + sizes[0] + sizes[1]) : nil,
                                          dx: grads[0].pointer(T.self), dh0: grads[1].pointer(T.self), dc0: c0 == nil ? nil : grads[2].pointer(T.self),
                                          dWIH: dWIH.pointer(T.self), dWHH: dWHH.pointer(T.self), dBIH: dB.pointer(T.self), dBHH: dBH.pointer(T.self),
                                          dWHR: dWHR?.pointer(T.self))
            }
            dtype == .float64 ? back(Double.self) : back(Float.self)
            grads += [dWIH, dWHH]
            if bIH != nil { grads.append(dB) }
            if bHH != nil { grads.append(dBH) }
            if let dWHR { grads.append(dWHR) }
            return grads
        }
        let output = result.recurrentPart(at: 0, batchFirstOutput ? [batch, steps, outWidth] : [steps, batch, outWidth])
        let h = result.recurrentPart(at: sizes[0], [batch, outWidth])
        let c = cell == .lstm ? result.recurrentPart(at: sizes[0] + sizes[1], [batch, hidden]) : nil
        return (output, h, c)
    }

    /// One of the packed result's three parts as a view of its memory, not a `narrow` copy (an
    /// LSTM's whole output crossed memory once more for nothing). A general zero-copy `narrow`
    /// would let an in-place write reach a tensor saved for backward unseen (Ember keeps no
    /// version counters); here it cannot: backward reads none of the result's values, and the
    /// parts do not overlap.
    private func recurrentPart(at offset: Int, _ shape: [Int]) -> Tensor {
        flatView(offset: offset, shape: shape).recordOp("RecurrentPartBackward", [self]) { [size = count] g in
            [g.reshape([g.count]).unnarrow(dim: 0, start: offset, size: size)]
        }
    }
}
