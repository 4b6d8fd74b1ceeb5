import XCTest
@testable import Ember

/// Layers, losses, optimizers and schedules against PyTorch (Fixtures/nn.json).
final class NNReferenceTests: XCTestCase {
    let fixtures = NNFixtures.shared

    private func assertClose(_ got: [Double], _ want: [Double], _ what: String, rtol: Double = 1e-4, atol: Double = 1e-5,
                             file: StaticString = #filePath, line: UInt = #line) {
        if let m = firstMismatch(got, want, rtol: rtol, atol: atol) {
            XCTFail("\(what)[\(m.index)] = \(m.got), PyTorch \(m.want)", file: file, line: line)
        }
    }

    func testEveryLayerMatchesPyTorchInValueAndGradient() throws {
        XCTAssertEqual(Set(fixtures.layers.map(\.name)), Set(layerTable.keys))
        for c in fixtures.layers {
            let module = layerTable[c.name]!()
            try module.loadStateDict(c.state.tensors())
            module.train(c.train)
            let x = c.input.tensor()
            if x.dtype.isFloatingPoint { x.requiresGrad = true }
            let out = module(x)
            XCTAssertEqual(out.shape, c.output.shape, c.name)
            assertClose(out.doubleScalars, c.output.values, "\(c.name) output")
            (out * Tensor(c.weight, shape: out.shape, dtype: .float32)).sum().backward()
            if let want = c.inputGrad { assertClose(x.grad!.doubleScalars, want, "\(c.name) input grad") }
            let params = Dictionary(uniqueKeysWithValues: module.namedParameters())
            XCTAssertEqual(Set(params.keys), Set(c.paramGrads.keys), "\(c.name) parameter names")
            for (key, want) in c.paramGrads {
                assertClose(params[key]?.grad?.doubleScalars ?? [], want, "\(c.name) grad of \(key)")
            }
            let buffers = Dictionary(uniqueKeysWithValues: module.namedBuffers())
            for (key, want) in c.buffersAfter {
                assertClose(buffers[key]?.doubleScalars ?? [], want.values, "\(c.name) buffer \(key)")
            }
        }
    }

    /// The attention, transformer and recurrent layers in float64: PyTorch's values to ~1e-10, and
    /// finite differences for the input gradient (gradcheck).
    func testAttentionAndTransformerLayersInFloat64() throws {
        let names = ["mhaSelf", "mhaWeights", "mhaHeadWeights", "mhaCausal", "mhaKeyPadding", "mhaKeyPaddingCausal", "mhaAdditiveMask",
                     "mha3DMask", "mhaCross", "mhaUnbatched", "encoderLayer", "encoderLayerNormFirst", "encoderLayerSeqFirst", "encoder",
                     "decoderLayer", "decoderLayerNormFirst", "rmsNorm", "rmsNormEps", "layerNormNoBias", "geluTanh",
                     "rnnTanh", "rnnReluBidirectional", "lstm", "lstmDeepBidirectional", "lstmProjection", "lstmNoBias", "gru",
                     "gruBidirectional", "lstmLengths", "gruLengths", "rnnLengths", "lstmCell", "gruCell", "rnnCell"]
        for c in fixtures.layers where names.contains(c.name) {
            let module = layerTable[c.name]!().to(.float64)
            try module.loadStateDict(c.state.tensors(.float64))
            let x = c.input.tensor(.float64).requiresGrad_()
            let out = module(x)
            (out * Tensor(c.weight, shape: out.shape, dtype: .float64)).sum().backward()
            if let m = firstMismatch(out.doubleScalars, c.output.values, rtol: 1e-9, atol: 1e-10) {
                XCTFail("\(c.name) [float64]: output[\(m.index)] = \(m.got), PyTorch \(m.want)")
            }
            if let m = firstMismatch(x.grad!.doubleScalars, c.inputGrad!, rtol: 1e-9, atol: 1e-10) {
                XCTFail("\(c.name) [float64]: input grad[\(m.index)] = \(m.got), PyTorch \(m.want)")
            }
            for (key, p) in module.namedParameters() {
                if let m = firstMismatch(p.grad!.doubleScalars, c.paramGrads[key]!, rtol: 1e-9, atol: 1e-10) {
                    XCTFail("\(c.name) [float64]: grad of \(key)[\(m.index)] = \(m.got), PyTorch \(m.want)")
                }
            }
            do {
                try gradcheck({ module($0[0]) }, inputs: [c.input.tensor(.float64).requiresGrad_()])
            } catch {
                XCTFail("\(c.name): \(error)")
            }
        }
    }

    func testEveryLossAndReductionMatchesPyTorch() {
        XCTAssertEqual(Set(fixtures.losses.map(\.name)), Set(lossTable.keys))
        for c in fixtures.losses {
            let x = c.input.tensor(.float64)
            x.requiresGrad = true
            let target = c.target.tensor(.float64)
            let out = lossTable[c.name]!(x, target, Reduction(rawValue: c.reduction)!)
            let what = "\(c.name)/\(c.reduction)"
            XCTAssertEqual(out.shape, c.output.shape, what)
            assertClose(out.doubleScalars, c.output.values, "\(what) output", rtol: 1e-6, atol: 1e-8)
            (out * Tensor(c.weight, shape: out.shape, dtype: .float64)).sum().backward()
            assertClose(x.grad!.doubleScalars, c.inputGrad, "\(what) input grad", rtol: 1e-6, atol: 1e-8)
        }
    }

    private func makeOptimizer(_ name: String, _ model: Sequential) -> Optimizer {
        let ps = model.parameters()
        switch name {
        case "sgd": return SGD(parameters: ps, learningRate: 0.1)
        case "sgdMomentum": return SGD(parameters: ps, learningRate: 0.05, momentum: 0.9, dampening: 0.1, weightDecay: 0.01)
        case "sgdNesterov": return SGD(parameters: ps, learningRate: 0.05, momentum: 0.9, nesterov: true)
        case "sgdGroups":
            let options: [String: Double] = ["momentum": 0.5, "dampening": 0, "weight_decay": 0, "nesterov": 0, "maximize": 0]
            return SGD(paramGroups: [ParamGroup(params: model[0].parameters(), learningRate: 0.1, options: options),
                                     ParamGroup(params: model[2].parameters(), learningRate: 0.01, options: options)])
        case "adam": return Adam(parameters: ps, learningRate: 0.01)
        case "adamAmsgrad": return Adam(parameters: ps, learningRate: 0.02, betas: (0.8, 0.99), weightDecay: 0.05, amsgrad: true)
        case "adamW": return AdamW(parameters: ps, learningRate: 0.01, weightDecay: 0.1)
        case "rmsprop": return RMSprop(parameters: ps, learningRate: 0.01)
        case "rmspropCentered": return RMSprop(parameters: ps, learningRate: 0.005, weightDecay: 0.01, momentum: 0.5, centered: true)
        case "adagrad": return Adagrad(parameters: ps, learningRate: 0.1, lrDecay: 0.01, weightDecay: 0.01, initialAccumulatorValue: 0.1)
        default: fatalError("no optimizer for fixture \(name)")
        }
    }

    func testEveryOptimizerFollowsPyTorchsTrajectory() throws {
        let data = fixtures.optimizerData
        for c in fixtures.optimizers {
            let model = Sequential(Linear(inFeatures: 4, outFeatures: 3), Tanh(), Linear(inFeatures: 3, outFeatures: 2))
            try model.loadStateDict(data.`init`.tensors())
            let optimizer = makeOptimizer(c.name, model)
            var losses: [Double] = []
            for _ in 0..<c.losses.count {
                optimizer.zeroGrad()
                let loss = MSELoss()(model(data.x.tensor()), data.y.tensor())
                loss.backward()
                optimizer.step()
                losses.append(loss.doubleItem())
            }
            assertClose(losses, c.losses, "\(c.name) loss trajectory", rtol: 1e-4, atol: 1e-6)
            let final = model.stateDict()
            for (key, want) in c.final {
                assertClose(final[key]!.doubleScalars, want.values, "\(c.name) final \(key)", rtol: 1e-4, atol: 1e-5)
            }
        }
    }

    func testEveryScheduleMatchesPyTorchsRates() {
        let plateauMetrics = [1.0, 0.9, 0.95, 0.96, 0.97, 0.8, 0.81, 0.82, 0.83, 0.84, 0.85, 0.7, 0.7, 0.7, 0.7,
                              0.7, 0.7, 0.7, 0.69999, 0.7, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6]
        for c in fixtures.schedules {
            let p = Tensor([0], requiresGrad: true)
            let optimizer = SGD(parameters: [p], learningRate: 0.1, momentum: 0.9)
            var step: (Int) -> Void
            switch c.name {
            case "stepLR": let s = StepLR(optimizer: optimizer, stepSize: 5, gamma: 0.5); step = { _ in s.step() }
            case "multiStepLR": let s = MultiStepLR(optimizer: optimizer, milestones: [3, 7, 12], gamma: 0.3); step = { _ in s.step() }
            case "exponentialLR": let s = ExponentialLR(optimizer: optimizer, gamma: 0.9); step = { _ in s.step() }
            case "cosineAnnealingLR": let s = CosineAnnealingLR(optimizer: optimizer, tMax: 10, etaMin: 0.001); step = { _ in s.step() }
            case "linearLR": let s = LinearLR(optimizer: optimizer, startFactor: 0.2, endFactor: 1, totalIters: 6); step = { _ in s.step() }
            case "oneCycleLR": let s = OneCycleLR(optimizer: optimizer, maxLR: 0.5, totalSteps: 30); step = { _ in s.step() }
            case "oneCycleLRThreePhaseLinear":
                let s = OneCycleLR(optimizer: optimizer, maxLR: 0.5, totalSteps: 30, anneal: .linear, threePhase: true)
                step = { _ in s.step() }
            case "sequentialLR":
                let s = SequentialLR(optimizer: optimizer, schedulers: [
                    LinearLR(optimizer: optimizer, startFactor: 0.1, totalIters: 5),
                    CosineAnnealingLR(optimizer: optimizer, tMax: 20)], milestones: [5])
                step = { _ in s.step() }
            case "reduceLROnPlateau":
                let s = ReduceLROnPlateau(optimizer: optimizer, factor: 0.5, patience: 2, cooldown: 1)
                step = { s.step(plateauMetrics[$0]) }
            default: XCTFail("no schedule for fixture \(c.name)"); continue
            }
            var lrs: [Double] = [], momenta: [Double] = []
            for i in 0..<c.lrs.count {
                lrs.append(optimizer.learningRate)
                momenta.append(optimizer.paramGroups[0]["momentum"])
                step(i)
            }
            assertClose(lrs, c.lrs, "\(c.name) learning rates", rtol: 1e-9, atol: 1e-12)
            assertClose(momenta, c.momenta, "\(c.name) momenta", rtol: 1e-9, atol: 1e-12)
        }
    }

    func testPyTorchCNNStateDictLoadsByKeyAndReproducesOutputs() throws {
        let c = fixtures.cnn
        let model = Sequential(Conv2d(inChannels: 1, outChannels: 4, kernelSize: 3, padding: 1), BatchNorm2d(numFeatures: 4),
                               ReLU(), MaxPool2d(kernelSize: 2), Flatten(), Linear(inFeatures: 64, outFeatures: 5))
        XCTAssertEqual(model.stateDictKeys(), c.keys)
        try model.loadStateDict(c.state.tensors())
        model.eval()
        let out = noGrad { model(c.input.tensor()) }
        assertClose(out.doubleScalars, c.output.values, "cnn output")
    }
}
