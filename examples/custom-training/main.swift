// Training a model of one's own through EmberTrainer's public API: a model class, a dataset made
// here (not a preset, not a file), a metric of its own, and a callback, with everything the
// trainer does (ranks, checkpoints, exact resume, signals, metrics.jsonl, summary.json).
//
//   swift run CustomTraining --run-dir runs/spiral --epochs 300
//   launch/mpirun -n 2 .build/release/CustomTraining --run-dir runs/spiral2 --epochs 300
//   .build/release/CustomTraining --run-dir runs/spiral2 --resume latest     (after a SIGTERM)
//
// Every `trainer train` option works (`--lr`, `--optimizer adam`, `--local-ranks 2`, ...).
import Ember
import EmberTrainer
import Foundation

/// Two interleaved spirals of points in the plane, one per class: not separable by a line.
struct Spirals: Dataset {
    let points: Tensor, labels: Tensor

    init(count: Int, seed: UInt64) {
        let g = Generator(seed: seed)
        let t = Tensor.rand([count], generator: g) * 3 * Float.pi + 0.5
        let label = Tensor.randint(high: 2, [count], generator: g)
        let sign = label.to(.float32) * 2 - 1               // class 1 turns the other way
        let noise = Tensor.randn([count, 2], generator: g) * 0.15
        let x = t * t.cos() * sign / 4, y = t * t.sin() * sign / 4
        points = Tensor.stack([x, y], dim: 1) + noise
        labels = label
    }

    var count: Int { labels.count }
    subscript(_ i: Int) -> (input: Tensor, target: Tensor) { (points[i], labels[i]) }
    func batch(_ indices: [Int]) -> (input: Tensor, target: Tensor) {
        let index = Tensor(indices: indices)
        return (points.indexSelect(dim: 0, index: index), labels.indexSelect(dim: 0, index: index))
    }
}

/// A small residual MLP: features of the point and of its radius, two hidden layers.
final class SpiralNet: Module {
    let input: Linear, hidden: Linear, output: Linear
    let dropout: Dropout

    init(width: Int, generators g: ModelGenerators) {
        input = Linear(inFeatures: 3, outFeatures: width, generator: g.weights)
        hidden = Linear(inFeatures: width, outFeatures: width, generator: g.weights)
        output = Linear(inFeatures: width, outFeatures: 2, generator: g.weights)
        dropout = Dropout(p: 0.1, generator: g.dropout)
        super.init()
    }

    override func forward(_ x: Tensor) -> Tensor {
        let radius = (x * x).sum(dim: 1, keepDim: true).sqrt()
        let h = input(Tensor.concat([x, radius], dim: 1)).tanh()
        return output(dropout(h + hidden(h).tanh()))
    }
}

/// The task: the model, the data, the loss, and two metrics (accuracy, and the mean probability
/// the model gives the right class: a confidence that keeps rising after accuracy saturates).
struct SpiralTask: SupervisedTask {
    var name: String { "spiral-net" }
    var metrics: [Metric] { [.accuracy, Metric("confidence", .mean, higherIsBetter: true)] }

    func makeModel(generators: ModelGenerators) -> SpiralNet { SpiralNet(width: 32, generators: generators) }
    func trainingData() -> TaskData<PairBatch> { TaskData(Spirals(count: 1024, seed: 1)) }
    func validationData() -> TaskData<PairBatch>? { TaskData(Spirals(count: 256, seed: 2)) }
    func testData() -> TaskData<PairBatch>? { TaskData(Spirals(count: 256, seed: 3)) }

    func loss(_ output: Tensor, _ target: Tensor) -> Tensor { Losses.crossEntropy(output, target) }

    func record(output: Tensor, target: Tensor, log: inout MetricLog) {
        noGrad {
            let n = Double(target.count)
            log.record("accuracy", output.argmax(dim: 1).eq(target).sum().doubleItem(), count: n)
            let p = output.softmax(dim: 1).gather(dim: 1, index: target.unsqueeze(1))
            log.record("confidence", p.sum().doubleItem(), count: n)
        }
    }
}

/// Prints the confidence every 50 epochs (rank 0), and stops once it passes a target, if asked.
final class Milestones: TrainingCallback {
    let stopAt: Double?
    init(stopAt: Double?) { self.stopAt = stopAt }

    func epochEnded(_ context: TrainingContext) {
        let c = context.metrics["val_confidence"] ?? .nan
        if (context.epoch + 1) % 50 == 0 { Console.writeLine(String(format: "milestone: epoch %d, validation confidence %.4f", context.epoch + 1, c)) }
        if let stopAt, c >= stopAt { context.requestStop("validation confidence reached \(stopAt)") }
    }
}

// `CustomTraining [train] [options]`, `CustomTraining eval --checkpoint RUN`, `CustomTraining inspect RUN`.
// The defaults suit this task; every flag can change them.
let stopAt = ProcessInfo.processInfo.environment["SPIRAL_STOP_AT"].flatMap(Double.init)
let defaults = ["--epochs", "300", "--batch-size", "32", "--optimizer", "adam", "--lr", "0.01", "--schedule", "none",
                "--weight-decay", "0", "--log-interval", "1000"]
TrainingCommandLine.main(SpiralTask(), defaults: defaults, callbacks: { [Milestones(stopAt: stopAt)] })
