import Ember

/// A residual block: two 3×3 convolutions with batch norm, and a 1×1 projection on the shortcut
/// when the shape changes (the ResNet "basic block").
public final class BasicBlock: Module {
    let conv1: Conv2d, bn1: BatchNorm2d, conv2: Conv2d, bn2: BatchNorm2d
    let shortcut: Sequential?

    public init(_ inChannels: Int, _ outChannels: Int, stride: Int = 1, generator: Generator) {
        conv1 = Conv2d(inChannels: inChannels, outChannels: outChannels, kernelSize: 3, stride: stride, padding: 1, bias: false, generator: generator)
        bn1 = BatchNorm2d(numFeatures: outChannels)
        conv2 = Conv2d(inChannels: outChannels, outChannels: outChannels, kernelSize: 3, padding: 1, bias: false, generator: generator)
        bn2 = BatchNorm2d(numFeatures: outChannels)
        shortcut = stride != 1 || inChannels != outChannels
            ? Sequential(Conv2d(inChannels: inChannels, outChannels: outChannels, kernelSize: 1, stride: stride, bias: false, generator: generator),
                         BatchNorm2d(numFeatures: outChannels))
            : nil
        super.init()
    }

    public override func forward(_ x: Tensor) -> Tensor {
        let y = bn2(conv2(bn1(conv1(x)).relu()))
        return (y + (shortcut?(x) ?? x)).relu()
    }
}

/// The model presets of `trainer`, and `sequential` networks described in a config file.
public enum ModelFactory {
    /// Builds `config.model` for samples of `sampleShape` with `outputs` outputs.
    /// - Throws: `ConfigError` when the model cannot take that input (naming both).
    public static func make(_ config: TrainerConfig, sampleShape: [Int], outputs: Int, generator: Generator,
                            dropoutGenerator: Generator? = nil) throws -> Module {
        let dropoutGenerator = dropoutGenerator ?? generator
        let features = sampleShape.reduce(1, *)
        let dropout: [Module] = config.dropout > 0 ? [Dropout(p: config.dropout, generator: dropoutGenerator)] : []
        switch config.model {
        case "seednet":
            return Sequential(Flatten(), Linear(inFeatures: features, outFeatures: 5, generator: generator), ReLU(),
                              Linear(inFeatures: 5, outFeatures: outputs, generator: generator))
        case "mlp":
            return Sequential([Flatten(), Linear(inFeatures: features, outFeatures: 256, generator: generator), ReLU()] + dropout
                              + [Linear(inFeatures: 256, outFeatures: 128, generator: generator), ReLU()] + dropout
                              + [Linear(inFeatures: 128, outFeatures: outputs, generator: generator)])
        case "cnn":
            let image = try imageShape(sampleShape, model: "cnn", data: config.data)
            guard image == [1, 28, 28] else {
                throw ConfigError("--model cnn (LeNet-5) needs 1×28×28 images (784 features); --data \(config.data) has samples of shape \(sampleShape)")
            }
            return Sequential([Reshape([1, 28, 28]),
                               Conv2d(inChannels: 1, outChannels: 6, kernelSize: 5, padding: 2, generator: generator), ReLU(), MaxPool2d(kernelSize: 2),
                               Conv2d(inChannels: 6, outChannels: 16, kernelSize: 5, generator: generator), ReLU(), MaxPool2d(kernelSize: 2),
                               Flatten(),
                               Linear(inFeatures: 400, outFeatures: 120, generator: generator), ReLU()] + dropout
                              + [Linear(inFeatures: 120, outFeatures: 84, generator: generator), ReLU(),
                                 Linear(inFeatures: 84, outFeatures: outputs, generator: generator)])
        case "resnet-small":
            let image = try imageShape(sampleShape, model: "resnet-small", data: config.data)
            guard image[1] >= 8 && image[2] >= 8 else {
                throw ConfigError("--model resnet-small needs images of at least 8×8; --data \(config.data) has \(image)")
            }
            return Sequential(Reshape(image),
                              Conv2d(inChannels: image[0], outChannels: 16, kernelSize: 3, padding: 1, bias: false, generator: generator),
                              BatchNorm2d(numFeatures: 16), ReLU(),
                              BasicBlock(16, 16, generator: generator), BasicBlock(16, 32, stride: 2, generator: generator),
                              BasicBlock(32, 64, stride: 2, generator: generator),
                              AdaptiveAvgPool2d(outputSize: 1), Flatten(),
                              Linear(inFeatures: 64, outFeatures: outputs, generator: generator))
        case "sequential":
            return try sequential(config.layers ?? [], sampleShape: sampleShape, outputs: outputs, generator: generator,
                                  dropoutGenerator: dropoutGenerator)
        default:
            if let build = ModelRegistry.builder(config.model.rawValue) {
                return try build(ModelRegistry.Input(sampleShape: sampleShape, outputs: outputs,
                                                     generators: ModelGenerators(weights: generator, dropout: dropoutGenerator), config: config))
            }
            throw ConfigError("--model \(config.model) is not one of \((TrainerConfig.models + ModelRegistry.names).joined(separator: ", "))")
        }
    }

    /// `[C, H, W]` for image models: image samples as they are, 784 flat features as 1×28×28.
    static func imageShape(_ shape: [Int], model: String, data: String) throws -> [Int] {
        if shape.count == 3 { return shape }
        if shape.count == 2 { return [1] + shape }
        if shape.reduce(1, *) == 784 { return [1, 28, 28] }
        throw ConfigError("--model \(model) needs image samples [C, H, W] (or 784 features for 28×28); --data \(data) has samples of shape \(shape)")
    }

    /// Builds the layers of a config's `sequential` model, tracking the sample shape so each
    /// layer gets the right input size and mistakes are reported, not crashed on.
    static func sequential(_ specs: [LayerSpec], sampleShape: [Int], outputs: Int, generator: Generator,
                           dropoutGenerator: Generator) throws -> Module {
        var shape = sampleShape
        var layers: [Module] = []
        for (i, spec) in specs.enumerated() {
            func need(_ value: Int?, _ key: String) throws -> Int {
                guard let value, value > 0 else { throw ConfigError("layers[\(i)] (\(spec.type)) needs a positive '\(key)'") }
                return value
            }
            let last = i == specs.count - 1
            switch spec.type {
            case "linear":
                guard shape.count == 1 else {
                    throw ConfigError("layers[\(i)] (linear) gets samples of shape \(shape); add {\"type\": \"flatten\"} before it")
                }
                let out = last ? (spec.out ?? outputs) : try need(spec.out, "out")
                layers.append(Linear(inFeatures: shape[0], outFeatures: out, generator: generator))
                shape = [out]
            case "conv2d":
                guard shape.count == 3 else { throw ConfigError("layers[\(i)] (conv2d) needs image samples [C, H, W], gets \(shape)") }
                let out = try need(spec.out, "out"), k = try need(spec.kernel, "kernel")
                let s = spec.stride ?? 1, p = spec.padding ?? 0
                let h = (shape[1] + 2 * p - k) / s + 1, w = (shape[2] + 2 * p - k) / s + 1
                guard h > 0 && w > 0 else { throw ConfigError("layers[\(i)] (conv2d) kernel \(k) does not fit samples of shape \(shape)") }
                layers.append(Conv2d(inChannels: shape[0], outChannels: out, kernelSize: k, stride: s, padding: p, generator: generator))
                shape = [out, h, w]
            case "maxpool2d", "avgpool2d":
                guard shape.count == 3 else { throw ConfigError("layers[\(i)] (\(spec.type)) needs image samples [C, H, W], gets \(shape)") }
                let k = try need(spec.kernel, "kernel"), s = spec.stride ?? k
                guard shape[1] >= k && shape[2] >= k else { throw ConfigError("layers[\(i)] (\(spec.type)) kernel \(k) is larger than \(shape)") }
                layers.append(spec.type == "maxpool2d" ? MaxPool2d(kernelSize: k, stride: s) : AvgPool2d(kernelSize: k, stride: s))
                shape = [shape[0], (shape[1] - k) / s + 1, (shape[2] - k) / s + 1]
            case "flatten":
                layers.append(Flatten())
                shape = [shape.reduce(1, *)]
            case "reshape-image":
                let image = try imageShape(shape, model: "sequential", data: "")
                layers.append(Reshape(image))
                shape = image
            case "relu": layers.append(ReLU())
            case "tanh": layers.append(Tanh())
            case "sigmoid": layers.append(Sigmoid())
            case "gelu": layers.append(GELU())
            case "dropout": layers.append(Dropout(p: spec.p ?? 0.5, generator: dropoutGenerator))
            case "batchnorm1d":
                guard shape.count == 1 else { throw ConfigError("layers[\(i)] (batchnorm1d) needs feature samples, gets \(shape)") }
                layers.append(BatchNorm1d(numFeatures: shape[0]))
            case "batchnorm2d":
                guard shape.count == 3 else { throw ConfigError("layers[\(i)] (batchnorm2d) needs image samples, gets \(shape)") }
                layers.append(BatchNorm2d(numFeatures: shape[0]))
            default:
                throw ConfigError("layers[\(i)] has unknown type '\(spec.type)' (known: linear, conv2d, maxpool2d, avgpool2d, flatten, reshape-image, relu, tanh, sigmoid, gelu, dropout, batchnorm1d, batchnorm2d)")
            }
        }
        guard shape == [outputs] else {
            throw ConfigError("the sequential model ends with samples of shape \(shape) but the data needs \(outputs) outputs; end with a linear layer")
        }
        return Sequential(layers)
    }
}

/// Reshapes each sample (keeps the batch dimension).
public final class Reshape: Module {
    public let sampleShape: [Int]
    public init(_ sampleShape: [Int]) {
        self.sampleShape = sampleShape
        super.init()
    }
    public override func forward(_ x: Tensor) -> Tensor { x.reshape([x.shape[0]] + sampleShape) }
}
