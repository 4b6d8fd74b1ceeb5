// Regularisation on a real task (the bundled MNIST subset): an MLP trained plainly, with an L2
// penalty (weight decay), with an L1 penalty added to the loss, with dropout, with batch
// normalisation, and with early stopping that keeps the best weights.
import Ember
import Foundation

let all = try MNIST.bundled()
let generator = Generator(seed: 0)
let parts = try randomSplit(all, fractions: [0.6, 0.4], generator: generator)
let train = TensorDataset(inputs: all.batch(parts[0].indices).input, targets: all.batch(parts[0].indices).target)
let val = TensorDataset(inputs: all.batch(parts[1].indices).input, targets: all.batch(parts[1].indices).target)

func mlp(dropout: Double = 0, batchNorm: Bool = false) -> Sequential {
    let g = Generator(seed: 1)
    var layers: [Module] = [Flatten(), Linear(inFeatures: 784, outFeatures: 256, generator: g)]
    if batchNorm { layers.append(BatchNorm1d(numFeatures: 256)) }
    layers.append(ReLU())
    if dropout > 0 { layers.append(Dropout(p: dropout, generator: Generator(seed: 2))) }
    layers.append(Linear(inFeatures: 256, outFeatures: 10, generator: g))
    return Sequential(layers)
}

func evaluate(_ model: Module) -> (loss: Double, accuracy: Double) {
    model.eval()
    defer { model.train() }
    return noGrad {
        let out = model(val.inputs)
        let loss = CrossEntropyLoss()(out, val.targets).doubleItem()
        let accuracy = out.argmax(dim: 1).eq(val.targets).mean().doubleItem()
        return (loss, accuracy)
    }
}

/// Trains for up to `epochs`; with `patience`, stops when validation loss has not improved for
/// that many epochs and restores the best weights.
func fit(_ name: String, _ model: Module, weightDecay: Double = 0, l1: Double = 0, epochs: Int = 25, patience: Int? = nil) {
    let optimizer = SGD(parameters: model.parameters(), learningRate: 0.05, momentum: 0.9, weightDecay: weightDecay)
    let loader = DataLoader(train, batchSize: 64, shuffle: true, seed: 3)
    var best = (loss: Double.infinity, epoch: 0, state: model.stateDict().mapValues { $0.clone() })
    var ran = 0
    for epoch in 0..<epochs {
        ran = epoch + 1
        for (x, y) in loader {
            optimizer.zeroGrad()
            var loss = CrossEntropyLoss()(model(x), y)
            if l1 > 0 {
                // L1 penalty on the weights (not the biases): pushes small weights to exactly zero.
                let penalty = model.namedParameters().filter { $0.0.hasSuffix("weight") }.map { $0.1.abs().sum() }
                loss = loss + penalty.reduce(Tensor(scalar: 0), +) * Float(l1)
            }
            loss.backward()
            optimizer.step()
        }
        let v = evaluate(model)
        if v.loss < best.loss { best = (v.loss, epoch, model.stateDict().mapValues { $0.clone() }) }
        if let patience, epoch - best.epoch >= patience {
            try! model.loadStateDict(best.state)
            break
        }
    }
    let (loss, accuracy) = evaluate(model)
    let trainAccuracy = noGrad { model.eval()(train.inputs).argmax(dim: 1).eq(train.targets).mean().doubleItem() }
    model.train()
    let label = name.padding(toLength: 28, withPad: " ", startingAt: 0)
    print(label + String(format: " epochs %2d  train acc %.4f  val loss %.4f  val acc %.4f", ran, trainAccuracy, loss, accuracy))
}

print("MLP 784-256-10 on 3000 training digits, validated on 2000:")
fit("no regularisation", mlp())
fit("L2 (weight decay 5e-3)", mlp(), weightDecay: 5e-3)
fit("L1 penalty 1e-4", mlp(), l1: 1e-4)
fit("dropout 0.5", mlp(dropout: 0.5))
fit("batch norm", mlp(batchNorm: true))
fit("early stopping (patience 3)", mlp(), patience: 3)
