/// Recurrent layers like `torch.nn.RNN`, `LSTM` and `GRU`: PyTorch's arguments, defaults,
/// initialisation (uniform in ±1/√hiddenSize), gate order (LSTM i, f, g, o; GRU r, z, n) and
/// state-dict keys (`weight_ih_l0`, `weight_hh_l0`, `bias_ih_l0`, `bias_hh_l0`, `weight_hr_l0`
/// for a projecting LSTM, `…_reverse` for the backward direction), so PyTorch's weights load by
/// key. Each layer and direction runs as one fused op (`Kernels/RecurrentKernels.swift`).
///
/// Input `[T, N, I]` (`[N, T, I]` with `batchFirst`, or unbatched `[T, I]`); optional initial
/// states `[numLayers · directions, N, H]`; `lengths:` gives each sequence's length, so a padded
/// batch computes what each sequence alone would (PyTorch's packed sequences): outputs past a
/// length are zero and the final states are those at each sequence's end.
open class RecurrentLayer: Module {
    let cell: RecurrentCell
    public let inputSize: Int, hiddenSize: Int, numLayers: Int, bias: Bool, batchFirst: Bool
    public let dropout: Double, bidirectional: Bool, projSize: Int
    let weights = ParameterList()
    let generator: Generator

    var directions: Int { bidirectional ? 2 : 1 }
    /// The width of h (the projection's when the LSTM projects).
    var outputSize: Int { projSize > 0 ? projSize : hiddenSize }

    init(_ cell: RecurrentCell, _ name: String, inputSize: Int, hiddenSize: Int, numLayers: Int, bias: Bool, batchFirst: Bool,
         dropout: Double, bidirectional: Bool, projSize: Int, generator: Generator) {
        requireLayer(name, ("inputSize", inputSize, 1), ("hiddenSize", hiddenSize, 1), ("numLayers", numLayers, 1), ("projSize", projSize, 0))
        require(dropout >= 0 && dropout < 1, "\(name): dropout must be in [0, 1), got \(dropout)")
        require(projSize < hiddenSize, "\(name): projSize \(projSize) must be smaller than hiddenSize \(hiddenSize)")
        (self.cell, self.inputSize, self.hiddenSize, self.numLayers, self.bias) = (cell, inputSize, hiddenSize, numLayers, bias)
        (self.batchFirst, self.dropout, self.bidirectional, self.projSize, self.generator) = (batchFirst, dropout, bidirectional, projSize, generator)
        super.init()
        let bound = 1 / Double(hiddenSize).squareRoot(), g = cell.gates * hiddenSize
        func uniform(_ shape: [Int]) -> Tensor { Tensor.rand(shape, low: -bound, high: bound, generator: generator) }
        for layer in 0..<numLayers {
            for direction in 0..<directions {
                let suffix = "_l\(layer)" + (direction == 1 ? "_reverse" : "")
                weights.append("weight_ih" + suffix, uniform([g, layer == 0 ? inputSize : outputSize * directions]))
                weights.append("weight_hh" + suffix, uniform([g, outputSize]))
                if bias {
                    weights.append("bias_ih" + suffix, uniform([g]))
                    weights.append("bias_hh" + suffix, uniform([g]))
                }
                if projSize > 0 { weights.append("weight_hr" + suffix, uniform([projSize, hiddenSize])) }
            }
        }
    }

    /// Every layer and direction over `input`; returns the last layer's outputs and the final
    /// states of all, stacked `[numLayers · directions, N, ·]`.
    func run(_ input: Tensor, h0: Tensor?, c0: Tensor?, lengths: [Int]?) -> (output: Tensor, h: Tensor, c: Tensor?) {
        let name = "\(type(of: self))"
        let unbatched = input.rank == 2
        require(input.rank == 3 || unbatched, "\(name) expects input of rank 3 (or 2 unbatched), got \(input.shape)")
        require(input.shape.last == inputSize, "\(name)(inputSize: \(inputSize)) got input whose last dimension is \(input.shape.last ?? 0)")
        var x = unbatched ? input.unsqueeze(1) : (batchFirst ? input.transpose(0, 1) : input)
        let (steps, batch) = (x.shape[0], x.shape[1])
        if let lengths {
            require(lengths.count == batch && lengths.allSatisfy { (1...steps).contains($0) },
                    "\(name): lengths must give each of the \(batch) sequences a length in 1...\(steps), got \(lengths)")
        }
        let stateCount = numLayers * directions
        func states(_ given: Tensor?, _ width: Int, _ what: String) -> Tensor {
            guard let given else { return Tensor.zeros([stateCount, batch, width], dtype: x.dtype) }
            let s = unbatched ? given.unsqueeze(1) : given
            require(s.shape == [stateCount, batch, width], "\(name): \(what) must be \(unbatched ? [stateCount, width] : [stateCount, batch, width]), got \(given.shape)")
            return s
        }
        let h0 = states(h0, outputSize, "the initial hidden state"), c0 = cell == .lstm ? states(c0, hiddenSize, "the initial cell state") : nil
        var hs: [Tensor] = [], cs: [Tensor] = []
        // The last layer of a batch-first module writes its outputs batch-first itself.
        let lastBatchFirst = batchFirst && !unbatched
        for layer in 0..<numLayers {
            var outputs: [Tensor] = []
            for direction in 0..<directions {
                let suffix = "_l\(layer)" + (direction == 1 ? "_reverse" : "")
                let k = layer * directions + direction
                let r = Tensor.recurrentLayer(cell, x, h0: h0[k], c0: c0?[k], wIH: weights["weight_ih" + suffix]!, wHH: weights["weight_hh" + suffix]!,
                                              bIH: weights["bias_ih" + suffix], bHH: weights["bias_hh" + suffix], wHR: weights["weight_hr" + suffix],
                                              lengths: lengths, reverse: direction == 1, batchFirstOutput: lastBatchFirst && layer == numLayers - 1)
                outputs.append(r.output)
                hs.append(r.h)
                if let c = r.c { cs.append(c) }
            }
            x = directions == 1 ? outputs[0] : Tensor.cat(outputs, dim: 2)
            if isTraining && dropout > 0 && layer < numLayers - 1 {
                x = x * (Tensor.rand(x.shape, dtype: x.dtype, generator: generator).ge(dropout) / (1 - dropout))
            }
        }
        var h = Tensor.stack(hs), c = cs.isEmpty ? nil : Tensor.stack(cs)
        var out = x
        if unbatched {
            out = out.squeeze(1)
            h = h.squeeze(1)
            c = c?.squeeze(1)
        }
        return (out, h, c)
    }

    /// The outputs alone (for `Sequential`).
    open override func forward(_ x: Tensor) -> Tensor { run(x, h0: nil, c0: nil, lengths: nil).output }

    open override var extraDescription: String {
        "\(inputSize), \(hiddenSize)" + (numLayers > 1 ? ", num_layers=\(numLayers)" : "") + (batchFirst ? ", batch_first=True" : "")
            + (bidirectional ? ", bidirectional=True" : "") + (projSize > 0 ? ", proj_size=\(projSize)" : "")
    }
}

/// An Elman RNN: `h' = tanh(x W_ihᵀ + b_ih + h W_hhᵀ + b_hh)` (or relu), like `torch.nn.RNN`.
public final class RNN: RecurrentLayer {
    public enum Nonlinearity: String, Sendable, StringOption { case tanh, relu }

    public init(inputSize: Int, hiddenSize: Int, numLayers: Int = 1, nonlinearity: Nonlinearity = .tanh, bias: Bool = true,
                batchFirst: Bool = false, dropout: Double = 0, bidirectional: Bool = false, generator: Generator = .default) {
        super.init(nonlinearity == .tanh ? .rnnTanh : .rnnRelu, "RNN", inputSize: inputSize, hiddenSize: hiddenSize, numLayers: numLayers,
                   bias: bias, batchFirst: batchFirst, dropout: dropout, bidirectional: bidirectional, projSize: 0, generator: generator)
    }

    /// Outputs `[T, N, D·H]` and final states `[numLayers·D, N, H]`, as PyTorch returns them.
    public func callAsFunction(_ input: Tensor, _ hx: Tensor? = nil, lengths: [Int]? = nil) -> (output: Tensor, hN: Tensor) {
        let r = run(input, h0: hx, c0: nil, lengths: lengths)
        return (r.output, r.h)
    }
}

/// A long short-term memory, like `torch.nn.LSTM` (with `projSize`, its projected variant).
public final class LSTM: RecurrentLayer {
    public init(inputSize: Int, hiddenSize: Int, numLayers: Int = 1, bias: Bool = true, batchFirst: Bool = false,
                dropout: Double = 0, bidirectional: Bool = false, projSize: Int = 0, generator: Generator = .default) {
        super.init(.lstm, "LSTM", inputSize: inputSize, hiddenSize: hiddenSize, numLayers: numLayers, bias: bias, batchFirst: batchFirst,
                   dropout: dropout, bidirectional: bidirectional, projSize: projSize, generator: generator)
    }

    /// Outputs, and the final `(h, c)`: `[numLayers·D, N, P]` and `[numLayers·D, N, H]`.
    public func callAsFunction(_ input: Tensor, _ state: (h: Tensor, c: Tensor)? = nil, lengths: [Int]? = nil)
        -> (output: Tensor, state: (h: Tensor, c: Tensor)) {
        let r = run(input, h0: state?.h, c0: state?.c, lengths: lengths)
        return (r.output, (r.h, r.c!))
    }
}

/// A gated recurrent unit, like `torch.nn.GRU`:
/// `n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))`, `h' = (1 − z) ⊙ n + z ⊙ h`.
public final class GRU: RecurrentLayer {
    public init(inputSize: Int, hiddenSize: Int, numLayers: Int = 1, bias: Bool = true, batchFirst: Bool = false,
                dropout: Double = 0, bidirectional: Bool = false, generator: Generator = .default) {
        super.init(.gru, "GRU", inputSize: inputSize, hiddenSize: hiddenSize, numLayers: numLayers, bias: bias, batchFirst: batchFirst,
                   dropout: dropout, bidirectional: bidirectional, projSize: 0, generator: generator)
    }

    public func callAsFunction(_ input: Tensor, _ hx: Tensor? = nil, lengths: [Int]? = nil) -> (output: Tensor, hN: Tensor) {
        let r = run(input, h0: hx, c0: nil, lengths: lengths)
        return (r.output, r.h)
    }
}

/// One step of a recurrent cell, like `torch.nn.RNNCell`, `LSTMCell` and `GRUCell` (keys
/// `weight_ih`, `weight_hh`, `bias_ih`, `bias_hh`): input `[N, I]` (or `[I]`), state `[N, H]`.
open class RecurrentCellModule: Module {
    @Parameter public var weightIh: Tensor
    @Parameter public var weightHh: Tensor
    @OptionalParameter public var biasIh: Tensor?
    @OptionalParameter public var biasHh: Tensor?
    let cell: RecurrentCell
    public let inputSize: Int, hiddenSize: Int

    init(_ cell: RecurrentCell, _ name: String, inputSize: Int, hiddenSize: Int, bias: Bool, generator: Generator) {
        requireLayer(name, ("inputSize", inputSize, 1), ("hiddenSize", hiddenSize, 1))
        (self.cell, self.inputSize, self.hiddenSize) = (cell, inputSize, hiddenSize)
        let bound = 1 / Double(hiddenSize).squareRoot(), g = cell.gates * hiddenSize
        func uniform(_ shape: [Int]) -> Tensor { Tensor.rand(shape, low: -bound, high: bound, generator: generator) }
        _weightIh = Parameter(wrappedValue: uniform([g, inputSize]))
        _weightHh = Parameter(wrappedValue: uniform([g, hiddenSize]))
        _biasIh = OptionalParameter(wrappedValue: bias ? uniform([g]) : nil)
        _biasHh = OptionalParameter(wrappedValue: bias ? uniform([g]) : nil)
        super.init()
    }

    /// One step: the new h (and c).
    func step(_ input: Tensor, h: Tensor?, c: Tensor?) -> (h: Tensor, c: Tensor?) {
        let unbatched = input.rank == 1
        require(input.rank == 2 || unbatched, "\(type(of: self)) expects input [N, \(inputSize)] or [\(inputSize)], got \(input.shape)")
        require(input.shape.last == inputSize, "\(type(of: self))(inputSize: \(inputSize)) got input of shape \(input.shape)")
        let x = unbatched ? input.unsqueeze(0) : input
        let n = x.shape[0]
        func state(_ s: Tensor?) -> Tensor {
            guard let s else { return Tensor.zeros([n, hiddenSize], dtype: x.dtype) }
            let t = unbatched ? s.unsqueeze(0) : s
            require(t.shape == [n, hiddenSize], "\(type(of: self)): a state must be [\(n), \(hiddenSize)], got \(s.shape)")
            return t
        }
        let r = Tensor.recurrentLayer(cell, x.unsqueeze(0), h0: state(h), c0: cell == .lstm ? state(c) : nil, wIH: weightIh, wHH: weightHh,
                                      bIH: biasIh, bHH: biasHh, wHR: nil, lengths: nil, reverse: false)
        return unbatched ? (r.h.squeeze(0), r.c?.squeeze(0)) : (r.h, r.c)
    }

    open override func forward(_ x: Tensor) -> Tensor { step(x, h: nil, c: nil).h }
}

public final class RNNCell: RecurrentCellModule {
    public init(inputSize: Int, hiddenSize: Int, bias: Bool = true, nonlinearity: RNN.Nonlinearity = .tanh, generator: Generator = .default) {
        super.init(nonlinearity == .tanh ? .rnnTanh : .rnnRelu, "RNNCell", inputSize: inputSize, hiddenSize: hiddenSize, bias: bias, generator: generator)
    }
    public func callAsFunction(_ input: Tensor, _ hx: Tensor? = nil) -> Tensor { step(input, h: hx, c: nil).h }
}

public final class LSTMCell: RecurrentCellModule {
    public init(inputSize: Int, hiddenSize: Int, bias: Bool = true, generator: Generator = .default) {
        super.init(.lstm, "LSTMCell", inputSize: inputSize, hiddenSize: hiddenSize, bias: bias, generator: generator)
    }
    public func callAsFunction(_ input: Tensor, _ state: (h: Tensor, c: Tensor)? = nil) -> (h: Tensor, c: Tensor) {
        let r = step(input, h: state?.h, c: state?.c)
        return (r.h, r.c!)
    }
}

public final class GRUCell: RecurrentCellModule {
    public init(inputSize: Int, hiddenSize: Int, bias: Bool = true, generator: Generator = .default) {
        super.init(.gru, "GRUCell", inputSize: inputSize, hiddenSize: hiddenSize, bias: bias, generator: generator)
    }
    public func callAsFunction(_ input: Tensor, _ hx: Tensor? = nil) -> Tensor { step(input, h: hx, c: nil).h }
}
