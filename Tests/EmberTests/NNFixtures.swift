import Foundation
import Ember

/// Fixtures/nn.json, written by scripts/generate_nn_fixtures.py.
struct NNFixtures: Decodable {
    struct Entry: Decodable {
        let shape: [Int]
        let values: [Double]
        let dtype: String
        func tensor(_ dtype: DType = .float32) -> Tensor {
            self.dtype == "int64" ? Tensor(indices: values.map { Int($0) }, shape: shape) : Tensor(values, shape: shape, dtype: dtype)
        }
    }
    struct Layer: Decodable {
        let name: String
        let train: Bool
        let state: [String: Entry]
        let input: Entry
        let output: Entry
        let weight: [Double]
        let inputGrad: [Double]?
        let paramGrads: [String: [Double]]
        let buffersAfter: [String: Entry]
    }
    struct LossCase: Decodable {
        let name: String
        let reduction: String
        let input: Entry
        let target: Entry
        let output: Entry
        let weight: [Double]
        let inputGrad: [Double]
    }
    struct OptimizerCase: Decodable {
        let name: String
        let losses: [Double]
        let final: [String: Entry]
    }
    struct OptimizerData: Decodable {
        let x: Entry
        let y: Entry
        let `init`: [String: Entry]
    }
    struct Schedule: Decodable {
        let name: String
        let lrs: [Double]
        let momenta: [Double]
    }
    struct CNN: Decodable {
        let state: [String: Entry]
        let input: Entry
        let output: Entry
        let keys: [String]
    }
    let layers: [Layer]
    let losses: [LossCase]
    let optimizers: [OptimizerCase]
    let optimizerData: OptimizerData
    let schedules: [Schedule]
    let cnn: CNN

    static let shared = try! Fixture.load("nn.json", as: NNFixtures.self)
}

extension Dictionary where Key == String, Value == NNFixtures.Entry {
    func tensors(_ dtype: DType = .float32) -> [String: Tensor] { mapValues { $0.tensor(dtype) } }
}

/// Ember's side of every layer case, constructed with the same arguments as in the generator.
let layerTable: [String: () -> Module] = {
    var t: [String: () -> Module] = [:]
    t["linear"] = { Linear(inFeatures: 4, outFeatures: 3) }
    t["linearNoBias"] = { Linear(inFeatures: 4, outFeatures: 3, bias: false) }
    t["linearBatched"] = { Linear(inFeatures: 4, outFeatures: 3) }
    t["conv2d"] = { Conv2d(inChannels: 2, outChannels: 3, kernelSize: 3, stride: 1, padding: 1) }
    t["conv2dStrideDilation"] = { Conv2d(inChannels: 2, outChannels: 3, kernelSize: 3, stride: 2, padding: 0, dilation: 2) }
    t["conv2dGroups"] = { Conv2d(inChannels: 4, outChannels: 6, kernelSize: 3, groups: 2) }
    t["conv2dSame"] = { Conv2d(inChannels: 2, outChannels: 2, kernelSize: (4, 4), padding: .same) }
    t["conv2dRect"] = { Conv2d(inChannels: 1, outChannels: 2, kernelSize: (2, 3), stride: (1, 2), padding: .explicit(h: 1, w: 0)) }
    t["conv1d"] = { Conv1d(inChannels: 2, outChannels: 3, kernelSize: 3, stride: 2, padding: 1) }
    t["convTranspose2d"] = { ConvTranspose2d(inChannels: 2, outChannels: 3, kernelSize: 3, stride: 2, padding: 1, outputPadding: 1) }
    t["convTranspose2dGroups"] = { ConvTranspose2d(inChannels: 4, outChannels: 6, kernelSize: 3, stride: 2, groups: 2) }
    t["maxPool2d"] = { MaxPool2d(kernelSize: 2) }
    t["maxPool2dPadded"] = { MaxPool2d(kernelSize: 3, stride: 2, padding: 1) }
    t["maxPool2dCeil"] = { MaxPool2d(kernelSize: 2, ceilMode: true) }
    t["avgPool2d"] = { AvgPool2d(kernelSize: 2) }
    t["avgPool2dPadded"] = { AvgPool2d(kernelSize: 3, stride: 2, padding: 1, countIncludePad: false) }
    t["adaptiveAvgPool2d"] = { AdaptiveAvgPool2d(outputSize: (3, 2)) }
    t["adaptiveAvgPool2dGlobal"] = { AdaptiveAvgPool2d(outputSize: 1) }
    t["maxPool1d"] = { MaxPool1d(kernelSize: 3, stride: 2, padding: 1) }
    t["maxPool1dCeil"] = { MaxPool1d(kernelSize: 2, ceilMode: true) }
    t["maxPool1dDilated"] = { MaxPool1d(kernelSize: 2, stride: 1, dilation: 2) }
    t["maxPool1dUnbatched"] = { MaxPool1d(kernelSize: 2) }
    t["avgPool1d"] = { AvgPool1d(kernelSize: 2) }
    t["avgPool1dPadded"] = { AvgPool1d(kernelSize: 3, stride: 2, padding: 1, countIncludePad: false) }
    t["adaptiveAvgPool1d"] = { AdaptiveAvgPool1d(outputSize: 4) }
    t["adaptiveAvgPool1dUnbatched"] = { AdaptiveAvgPool1d(outputSize: 3) }
    t["adaptiveMaxPool1d"] = { AdaptiveMaxPool1d(outputSize: 4) }
    t["adaptiveMaxPool1dUnbatched"] = { AdaptiveMaxPool1d(outputSize: 3) }
    t["batchNorm1dTrain"] = { BatchNorm1d(numFeatures: 3) }
    t["batchNorm1dSequenceTrain"] = { BatchNorm1d(numFeatures: 3, momentum: 0.3) }
    t["batchNorm1dEval"] = { BatchNorm1d(numFeatures: 3) }
    t["batchNorm2dTrain"] = { BatchNorm2d(numFeatures: 3) }
    t["batchNorm2dEval"] = { BatchNorm2d(numFeatures: 3) }
    t["layerNorm"] = { LayerNorm(normalizedShape: [4]) }
    t["layerNorm2d"] = { LayerNorm(normalizedShape: [3, 4], eps: 1e-3) }
    t["groupNorm"] = { GroupNorm(numGroups: 2, numChannels: 4) }
    t["embedding"] = { Embedding(numEmbeddings: 10, embeddingDim: 3) }
    t["prelu"] = { PReLU(numParameters: 3) }
    t["preluShared"] = { PReLU() }
    t["flatten"] = { Flatten() }
    // Attention and transformer layers, wrapped as in the generator (property `m`).
    let padding = AttentionMask.blocked(Tensor([0, 0, 0, 1, 1, 0, 0, 0, 0, 0], shape: [2, 5]))
    t["mhaSelf"] = { Wrap(MultiheadAttention(embedDim: 8, numHeads: 2, batchFirst: true)) { m, x in m(x, x, x, needWeights: false).output } }
    t["mhaWeights"] = { Wrap(MultiheadAttention(embedDim: 8, numHeads: 2, batchFirst: true)) { m, x in
        let (y, w) = m(x, x, x)
        return Tensor.cat([y.flatten(), w!.flatten()])
    } }
    t["mhaHeadWeights"] = { Wrap(MultiheadAttention(embedDim: 8, numHeads: 4, bias: false, batchFirst: true)) { m, x in
        let (y, w) = m(x, x, x, averageAttnWeights: false)
        return Tensor.cat([y.flatten(), w!.flatten()])
    } }
    t["mhaCausal"] = { Wrap(MultiheadAttention(embedDim: 8, numHeads: 2, batchFirst: true)) { m, x in m(x, x, x, needWeights: false, isCausal: true).output } }
    t["mhaKeyPadding"] = { Wrap(MultiheadAttention(embedDim: 8, numHeads: 2)) { m, x in m(x, x, x, keyPaddingMask: padding, needWeights: false).output } }
    t["mhaKeyPaddingCausal"] = { Wrap(MultiheadAttention(embedDim: 8, numHeads: 2, batchFirst: true)) { m, x in
        m(x, x, x, keyPaddingMask: padding, needWeights: false, isCausal: true).output
    } }
    t["mhaAdditiveMask"] = { Wrap(MultiheadAttention(embedDim: 8, numHeads: 2, batchFirst: true)) { m, x in
        m(x, x, x, needWeights: false, attnMask: .additive(wave([5, 5]))).output
    } }
    t["mha3DMask"] = { Wrap(MultiheadAttention(embedDim: 8, numHeads: 2, batchFirst: true)) { m, x in
        m(x, x, x, needWeights: false, attnMask: .additive(wave([4, 5, 5]))).output
    } }
    t["mhaCross"] = { Wrap(MultiheadAttention(embedDim: 8, numHeads: 2, kdim: 6, vdim: 5, batchFirst: true)) { m, x in
        m(x.narrow(dim: 1, start: 0, length: 3), x.narrow(dim: 2, start: 0, length: 6), x.narrow(dim: 2, start: 3, length: 5), needWeights: false).output
    } }
    t["mhaUnbatched"] = { Wrap(MultiheadAttention(embedDim: 8, numHeads: 2)) { m, x in m(x, x, x, needWeights: false).output } }
    t["encoderLayer"] = { Wrap(TransformerEncoderLayer(dModel: 8, nhead: 2, dimFeedforward: 16, dropout: 0, batchFirst: true)) { m, x in
        m(x, srcKeyPaddingMask: padding)
    } }
    t["encoderLayerNormFirst"] = { Wrap(TransformerEncoderLayer(dModel: 8, nhead: 2, dimFeedforward: 12, dropout: 0, activation: "gelu",
                                                               batchFirst: true, normFirst: true)) { m, x in m(x, isCausal: true) } }
    t["encoderLayerSeqFirst"] = { Wrap(TransformerEncoderLayer(dModel: 8, nhead: 2, dimFeedforward: 16, dropout: 0, bias: false)) { m, x in m(x) } }
    t["encoder"] = { Wrap(TransformerEncoder(encoderLayer: TransformerEncoderLayer(dModel: 8, nhead: 2, dimFeedforward: 16, dropout: 0, batchFirst: true),
                                             numLayers: 2, norm: LayerNorm(normalizedShape: [8]))) { m, x in m(x, isCausal: true) } }
    t["decoderLayer"] = { Wrap(TransformerDecoderLayer(dModel: 8, nhead: 2, dimFeedforward: 16, dropout: 0, batchFirst: true)) { m, x in
        m(x, memory: x.flip([1]) * 0.5, memoryKeyPaddingMask: padding, tgtIsCausal: true)
    } }
    t["decoderLayerNormFirst"] = { Wrap(TransformerDecoderLayer(dModel: 8, nhead: 2, dimFeedforward: 16, dropout: 0, activation: "gelu",
                                                               batchFirst: true, normFirst: true)) { m, x in
        m(x.narrow(dim: 1, start: 0, length: 3), memory: x)
    } }
    t["rmsNorm"] = { RMSNorm(normalizedShape: [4]) }
    t["rmsNormEps"] = { RMSNorm(normalizedShape: [3, 4], eps: 1e-3) }
    t["layerNormNoBias"] = { LayerNorm(normalizedShape: [4], bias: false) }
    t["embeddingPadding"] = { Embedding(numEmbeddings: 10, embeddingDim: 3, paddingIdx: 4) }
    t["geluTanh"] = { GELU(approximate: "tanh") }
    // Recurrent layers with learnable initial states, as the generator's WrapState.
    func flat(_ parts: [Tensor]) -> Tensor { Tensor.cat(parts.map { $0.flatten() }) }
    t["rnnTanh"] = { WrapState(RNN(inputSize: 3, hiddenSize: 4, numLayers: 2), h0: [2, 2, 4]) { m, x, h, _ in let r = m(x, h); return flat([r.output, r.hN]) } }
    t["rnnReluBidirectional"] = { WrapState(RNN(inputSize: 3, hiddenSize: 4, nonlinearity: "relu", batchFirst: true, bidirectional: true), h0: [2, 2, 4]) { m, x, h, _ in
        let r = m(x, h); return flat([r.output, r.hN]) } }
    t["lstm"] = { WrapState(LSTM(inputSize: 3, hiddenSize: 4), h0: [1, 2, 4], c0: [1, 2, 4]) { m, x, h, c in
        let r = m(x, (h, c!)); return flat([r.output, r.state.h, r.state.c]) } }
    t["lstmDeepBidirectional"] = { WrapState(LSTM(inputSize: 3, hiddenSize: 4, numLayers: 2, batchFirst: true, bidirectional: true), h0: [4, 2, 4], c0: [4, 2, 4]) { m, x, h, c in
        let r = m(x, (h, c!)); return flat([r.output, r.state.h, r.state.c]) } }
    t["lstmProjection"] = { WrapState(LSTM(inputSize: 3, hiddenSize: 5, numLayers: 2, projSize: 2), h0: [2, 2, 2], c0: [2, 2, 5]) { m, x, h, c in
        let r = m(x, (h, c!)); return flat([r.output, r.state.h, r.state.c]) } }
    t["lstmNoBias"] = { WrapState(LSTM(inputSize: 3, hiddenSize: 4, bias: false), h0: [1, 3, 4], c0: [1, 3, 4]) { m, x, h, c in
        let r = m(x, (h, c!)); return flat([r.output, r.state.h, r.state.c]) } }
    t["gru"] = { WrapState(GRU(inputSize: 3, hiddenSize: 4, numLayers: 2, batchFirst: true), h0: [2, 2, 4]) { m, x, h, _ in let r = m(x, h); return flat([r.output, r.hN]) } }
    t["gruBidirectional"] = { WrapState(GRU(inputSize: 3, hiddenSize: 4, bidirectional: true), h0: [2, 2, 4]) { m, x, h, _ in let r = m(x, h); return flat([r.output, r.hN]) } }
    t["lstmLengths"] = { WrapState(LSTM(inputSize: 3, hiddenSize: 4, numLayers: 2, batchFirst: true, bidirectional: true), h0: [4, 3, 4], c0: [4, 3, 4]) { m, x, h, c in
        let r = m(x, (h, c!), lengths: [5, 2, 4]); return flat([r.output, r.state.h, r.state.c]) } }
    t["gruLengths"] = { WrapState(GRU(inputSize: 3, hiddenSize: 4, bidirectional: true), h0: [2, 3, 4]) { m, x, h, _ in
        let r = m(x, h, lengths: [3, 5, 1]); return flat([r.output, r.hN]) } }
    t["rnnLengths"] = { WrapState(RNN(inputSize: 3, hiddenSize: 4), h0: [1, 2, 4]) { m, x, h, _ in let r = m(x, h, lengths: [2, 4]); return flat([r.output, r.hN]) } }
    t["lstmCell"] = { WrapState(LSTMCell(inputSize: 3, hiddenSize: 4), h0: [2, 4], c0: [2, 4]) { m, x, h, c in let r = m(x, (h, c!)); return flat([r.h, r.c]) } }
    t["gruCell"] = { WrapState(GRUCell(inputSize: 3, hiddenSize: 4), h0: [2, 4]) { m, x, h, _ in m(x, h) } }
    t["rnnCell"] = { WrapState(RNNCell(inputSize: 3, hiddenSize: 4, nonlinearity: "relu"), h0: [2, 4]) { m, x, h, _ in m(x, h) } }
    return t
}()

/// Ember's side of every loss case.
let lossTable: [String: (Tensor, Tensor, Reduction) -> Tensor] = {
    var t: [String: (Tensor, Tensor, Reduction) -> Tensor] = [:]
    let classWeight = Tensor([0.5, 2.0, 1.0, 1.5])
    t["mse"] = { Losses.mse($0, $1, reduction: $2) }
    t["l1"] = { Losses.l1($0, $1, reduction: $2) }
    t["smoothL1"] = { Losses.smoothL1($0, $1, beta: 0.5, reduction: $2) }
    t["huber"] = { Losses.huber($0, $1, delta: 0.7, reduction: $2) }
    t["crossEntropy"] = { CrossEntropyLoss(reduction: $2)($0, $1) }
    t["crossEntropyWeighted"] = { CrossEntropyLoss(weight: classWeight, reduction: $2)($0, $1) }
    t["crossEntropyIgnore"] = { CrossEntropyLoss(reduction: $2)($0, $1) }
    t["crossEntropySmoothing"] = { CrossEntropyLoss(reduction: $2, labelSmoothing: 0.1)($0, $1) }
    t["crossEntropySmoothingWeighted"] = { CrossEntropyLoss(weight: classWeight, reduction: $2, labelSmoothing: 0.2)($0, $1) }
    t["crossEntropySpatial"] = { CrossEntropyLoss(reduction: $2)($0, $1) }
    t["nll"] = { NLLLoss(weight: classWeight, reduction: $2)($0, $1) }
    t["bce"] = { BCELoss(reduction: $2)($0, $1) }
    t["bceWeighted"] = { BCELoss(weight: Tensor([0.2, 0.7, 1.3]), reduction: $2)($0, $1) }
    t["bceWithLogits"] = { BCEWithLogitsLoss(reduction: $2)($0, $1) }
    t["bceWithLogitsPosWeight"] = { BCEWithLogitsLoss(reduction: $2, posWeight: Tensor([0.5, 2.0, 3.0]))($0, $1) }
    t["klDiv"] = { KLDivLoss(reduction: $2)($0, $1) }
    t["klDivLogTarget"] = { KLDivLoss(reduction: $2, logTarget: true)($0, $1) }
    return t
}()

/// A layer driven by one input through `body`, like the generator's `Wrap` (key prefix `m.`).
final class Wrap<M: Module>: Module {
    let m: M
    let body: (M, Tensor) -> Tensor
    init(_ m: M, _ body: @escaping (M, Tensor) -> Tensor) {
        self.m = m
        self.body = body
        super.init()
    }
    override func forward(_ x: Tensor) -> Tensor { body(m, x) }
}

/// The generator's `wave`: sin of the flat index, a float mask both sides can build.
func wave(_ shape: [Int]) -> Tensor {
    Tensor((0..<shape.reduce(1, *)).map { Foundation.sin(Double($0)) }, shape: shape, dtype: .float64)
}

/// A recurrent layer with learnable initial states `h0` (and `c0`), like the generator's WrapState.
final class WrapState<M: Module>: Module {
    let m: M
    @Parameter var h0: Tensor
    @OptionalParameter var c0: Tensor?
    let body: (M, Tensor, Tensor, Tensor?) -> Tensor
    init(_ m: M, h0: [Int], c0: [Int]? = nil, _ body: @escaping (M, Tensor, Tensor, Tensor?) -> Tensor) {
        self.m = m
        _h0 = Parameter(wrappedValue: Tensor.zeros(h0))
        _c0 = OptionalParameter(wrappedValue: c0.map { Tensor.zeros($0) })
        self.body = body
        super.init()
    }
    override func forward(_ x: Tensor) -> Tensor { body(m, x, h0, c0) }
}
