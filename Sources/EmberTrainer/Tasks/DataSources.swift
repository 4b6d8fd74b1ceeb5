import Ember
import Foundation

/// What the model learns to predict.
public enum Task: String, Codable, Sendable {
    case classification, regression
}

/// The training, validation and test splits of a run's data, ready for the loop.
public struct PreparedData {
    public var train: TensorDataset
    public var val: TensorDataset?
    public var test: TensorDataset?
    public var task: Task
    /// Classes (classification) or target width (regression): the model's output size.
    public var outputs: Int
    /// Shape of one input sample.
    public var sampleShape: [Int] { Array(train.inputs.shape.dropFirst()) }
    public var source: String
    /// Something about how the data was read that the user should hear (rank 0 logs it).
    public var notice: String? = nil
}

/// The trainer's data: `--data` read, split into train, validation and test, and standardised.
public enum DataPreparation {
    /// Loads the configured data, splits off test and validation parts (seeded, so every rank and
    /// every resume sees the same split) and optionally standardises features with training statistics.
    /// `dataDirectory` is where the bundled MNIST subset lies when it is not found beside the program.
    public static func prepare(_ config: TrainerConfig, dataDirectory: String? = nil) throws -> PreparedData {
        var (full, givenTest, notice) = try load(config, dataDirectory: dataDirectory)
        guard full.count > 0 else { throw DataError("--data \(config.data) holds no samples") }
        let task: Task = full.targets.dtype == .int64 ? .classification : .regression
        let outputs = try outputCount(config, full: full, givenTest: givenTest, task: task)
        var (train, val, test) = try split(config, full: full, givenTest: givenTest, notice: &notice)
        if config.standardize {
            let norm = Normalize.fit(train.inputs)
            func apply(_ d: TensorDataset) -> TensorDataset { TensorDataset(inputs: norm.batch(d.inputs), targets: d.targets) }
            train = apply(train)
            val = val.map(apply)
            test = test.map(apply)
        }
        return PreparedData(train: train, val: val, test: test, task: task, outputs: outputs, source: config.data, notice: notice)
    }

    /// `--data` read: all its samples, the test set when the format brings its own, and a notice.
    private static func load(_ config: TrainerConfig, dataDirectory: String?) throws -> (TensorDataset, TensorDataset?, String?) {
        switch try DataSpec.parse(config.data) {
        case .mnist5k:
            return (try MNIST.bundled(dataDirectory: dataDirectory), nil, nil)
        case .synthetic:
            return (synthetic(model: config.model.rawValue, count: config.syntheticSamples, seed: config.seed), nil, nil)
        case .csv(let path):
            let (data, notice) = try loadCSV(path, labelColumn: config.labelColumn, classification: config.numClasses != nil)
            return (data, nil, notice)
        case .idx(let dir):
            let (data, test) = try MNISTFiles.load(directory: dir)
            return (data, test, nil)
        case .npy(let dir):
            let (data, test) = try loadNPY(dir)
            return (data, test, nil)
        case .shakespeare, .text, .tokens:
            throw DataError("--data \(config.data) is text, which only the language models (--model \(ModelName.languageModels.map(\.rawValue).joined(separator: ", "))) train on")
        }
    }

    /// The model's outputs: the classes (`--num-classes` when given, checked against the labels)
    /// or the width of a regression target.
    private static func outputCount(_ config: TrainerConfig, full: TensorDataset, givenTest: TensorDataset?, task: Task) throws -> Int {
        guard task == .classification else { return full.targets.shape.dropFirst().reduce(1, *) }
        var outputs = full.numClasses
        if let n = config.numClasses {
            let maxLabel = max(full.targets.intScalars.max() ?? 0, givenTest?.targets.intScalars.max() ?? 0)
            if maxLabel >= n {
                throw DataError("--data \(config.data) has label \(maxLabel), out of range for --num-classes \(n) (labels must be 0..<\(n))")
            }
            outputs = n
        }
        if outputs < 2 { throw DataError("--data \(config.data) has a single class; classification needs at least 2") }
        return outputs
    }

    /// Train, validation and test parts (seeded: every rank and every resume sees the same). A
    /// fraction too small for the data leaves an empty split: said in `notice`, and gone without.
    private static func split(_ config: TrainerConfig, full: TensorDataset, givenTest: TensorDataset?,
                              notice: inout String?) throws -> (TensorDataset, TensorDataset?, TensorDataset?) {
        let generator = Generator(seed: config.seed &+ 0x5EED)
        var rest = full
        var test = givenTest
        if test == nil && config.testFraction > 0 {
            let parts = try randomSplit(full, fractions: [1 - config.testFraction, config.testFraction], generator: generator)
            rest = materialize(parts[0], full)
            test = materialize(parts[1], full)
        }
        var train = rest
        var val: TensorDataset? = nil
        if config.valFraction > 0 {
            let share = config.valFraction / (1 - (givenTest == nil ? config.testFraction : 0))
            let parts = try randomSplit(rest, fractions: [1 - share, share], generator: generator)
            train = materialize(parts[0], rest)
            val = materialize(parts[1], rest)
        }
        guard train.count > 0 else { throw DataError("--data \(config.data): no training samples left after the validation and test splits") }
        if let v = val, v.count == 0 {
            if config.patience != nil || config.schedule == "plateau" {
                throw DataError("--data \(config.data): --val-fraction \(config.valFraction) of \(full.count) samples leaves no validation sample, which --patience and --schedule plateau need; raise --val-fraction")
            }
            val = nil
            notice = [notice, "--val-fraction \(config.valFraction) of \(full.count) samples leaves no validation sample: training without validation"].compactMap { $0 }.joined(separator: "; ")
        }
        if let t = test, t.count == 0 { test = nil }
        return (train, val, test)
    }

    static func materialize(_ subset: Subset<TensorDataset>, _ base: TensorDataset) -> TensorDataset {
        let b = base.batch(subset.indices)
        return TensorDataset(inputs: b.input, targets: b.target)
    }

    /// A CSV whose targets are all class indices (integral, non-negative, below
    /// `DataLimits.maxClassIndex`) is a classification set; otherwise regression, with a notice
    /// naming the first target that decided it. `classification` (--num-classes given) refuses
    /// targets that are not class indices instead.
    static func loadCSV(_ path: String, labelColumn: Int, classification: Bool) throws -> (TensorDataset, notice: String?) {
        let d = try CSV.load(path, labelColumn: labelColumn, target: .value)
        let y = d.targets.doubleScalars
        guard let row = y.firstIndex(where: { $0 < 0 || $0 != $0.rounded() || $0 > Double(DataLimits.maxClassIndex) }) else {
            return (TensorDataset(inputs: d.inputs, targets: Tensor(indices: y.map { Int($0) })), nil)
        }
        let why = "target \(y[row]) (sample \(row + 1)) is not a class index"
        if classification {
            throw DataError.file(path, "\(why), but --num-classes asks for classification")
        }
        return (d, "\(path): \(why), so the targets are taken as regression values (MSE loss); pass --num-classes N for classification")
    }

    /// `x.npy` and `y.npy` (and optionally `x_test.npy`, `y_test.npy`) in one directory.
    static func loadNPY(_ dir: String) throws -> (TensorDataset, TensorDataset?) {
        func pair(_ x: String, _ y: String, required: Bool) throws -> TensorDataset? {
            let xp = (dir as NSString).appendingPathComponent(x), yp = (dir as NSString).appendingPathComponent(y)
            guard FileManager.default.fileExists(atPath: xp) || required else { return nil }
            let inputs = try NPY.read(xp).to(.float32)
            var targets = try NPY.read(yp)
            if targets.dtype != .int64 { targets = targets.to(.float32) }
            // Labels saved as a column, (N, 1), are the same labels.
            if targets.dtype == .int64 && targets.rank == 2 && targets.shape[1] == 1 { targets = targets.reshape([targets.shape[0]]) }
            if targets.dtype == .int64 && targets.rank != 1 {
                throw DataError.file(yp, "holds integer labels of shape \(targets.shape); class labels must be one per sample, shape (N,) or (N, 1)")
            }
            if targets.dtype == .float32 && targets.rank == 1 { targets = targets.unsqueeze(1) }
            guard inputs.rank >= 1, targets.rank >= 1, inputs.shape[0] == targets.shape[0] else {
                throw DataError.file(yp, "has \(targets.rank >= 1 ? targets.shape[0] : 0) targets for \(inputs.rank >= 1 ? inputs.shape[0] : 0) samples in \(xp)")
            }
            if targets.dtype == .int64, let bad = targets.intScalars.first(where: { $0 < 0 || $0 > DataLimits.maxClassIndex }) {
                throw DataError.file(yp, bad < 0 ? "label \(bad) is negative" : "label \(bad) is larger than any class index Ember takes (\(DataLimits.maxClassIndex))")
            }
            return TensorDataset(inputs: inputs, targets: targets)
        }
        return (try pair("x.npy", "y.npy", required: true)!, try pair("x_test.npy", "y_test.npy", required: false))
    }

    /// A learnable classification task shaped for `model`: ten Gaussian clusters around random
    /// centres, with enough noise that a model has something to learn.
    public static func synthetic(model: String, count: Int, seed: UInt64) -> TensorDataset {
        let g = Generator(seed: seed &+ 0x5717)
        let shape: [Int] = model == "seednet" ? [10] : (["cnn", "resnet-small"].contains(model) ? [1, 28, 28] : [784])
        let features = shape.reduce(1, *)
        let labels = Tensor.randint(high: 10, [count], generator: g)
        let centres = Tensor.randn([10, features], generator: g) * Float(3 / Double(features).squareRoot().squareRoot())
        let x = noGrad { centres.indexSelect(dim: 0, index: labels) + Tensor.randn([count, features], generator: g) }
        return TensorDataset(inputs: x.reshape([count] + shape), targets: labels)
    }
}
