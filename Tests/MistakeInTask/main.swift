// A task of one's own with a mistake in its model (Linear expects 4 features, the data has 3),
// for launch/test: under the trainer and the launcher the mistake is one line per failing rank,
// status 1, and the corrected program (MISTAKE_FIXED=1) then trains in the same run directory.
import Ember
import EmberTrainer
import Foundation

struct ShapeMistake: SupervisedTask {
    let inputFeatures = ProcessInfo.processInfo.environment["MISTAKE_FIXED"] == nil ? 4 : 3
    var name: String { "shape-mistake" }

    func makeModel(generators g: ModelGenerators) throws -> Module {
        Sequential(Linear(inFeatures: inputFeatures, outFeatures: 2, generator: g.weights))
    }

    func trainingData() throws -> TaskData<PairBatch> {
        let g = Generator(seed: 1)
        return TaskData(TensorDataset(inputs: Tensor.randn([64, 3], generator: g), targets: Tensor(indices: (0..<64).map { $0 % 2 })))
    }

    func loss(_ output: Tensor, _ target: Tensor) -> Tensor { Losses.crossEntropy(output, target) }
}

TrainingCommandLine.main(ShapeMistake())
