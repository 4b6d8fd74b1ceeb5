// A small residual network (pre-activation blocks: BN → ReLU → conv, twice, plus the shortcut)
// trained for a few epochs on the bundled MNIST subset.
import Ember

/// y = x + F(x), with a strided 1×1 projection when the shape changes.
final class PreActBlock: Module {
    let bn1: BatchNorm2d, conv1: Conv2d, bn2: BatchNorm2d, conv2: Conv2d
    let projection: Conv2d?

    init(_ inChannels: Int, _ outChannels: Int, stride: Int) {
        bn1 = BatchNorm2d(numFeatures: inChannels)
        conv1 = Conv2d(inChannels: inChannels, outChannels: outChannels, kernelSize: 3, stride: stride, padding: 1, bias: false)
        bn2 = BatchNorm2d(numFeatures: outChannels)
        conv2 = Conv2d(inChannels: outChannels, outChannels: outChannels, kernelSize: 3, padding: 1, bias: false)
        projection = stride == 1 && inChannels == outChannels
            ? nil : Conv2d(inChannels: inChannels, outChannels: outChannels, kernelSize: 1, stride: stride, bias: false)
        super.init()
    }

    override func forward(_ x: Tensor) -> Tensor {
        let a = bn1(x).relu()
        let shortcut = projection?(a) ?? x
        return conv2(bn2(conv1(a)).relu()) + shortcut
    }
}

manualSeed(0)
let model = Sequential(
    Conv2d(inChannels: 1, outChannels: 16, kernelSize: 3, padding: 1, bias: false),
    PreActBlock(16, 16, stride: 1),
    PreActBlock(16, 32, stride: 2),
    PreActBlock(32, 64, stride: 2),
    BatchNorm2d(numFeatures: 64), ReLU(),
    AdaptiveAvgPool2d(outputSize: 1), Flatten(),
    Linear(inFeatures: 64, outFeatures: 10))
print(model.summary())

let data = try MNIST.bundled()
let split = try randomSplit(data, fractions: [0.9, 0.1], generator: Generator(seed: 0))
let train = split[0], test = split[1]
let optimizer = SGD(parameters: model.parameters(), learningRate: 0.05, momentum: 0.9, weightDecay: 5e-4)
let epochs = 3
let schedule = OneCycleLR(optimizer: optimizer, maxLR: 0.1, totalSteps: epochs * ((train.count + 63) / 64))
for epoch in 0..<epochs {
    var seen = 0.0, lossSum = 0.0
    for (x, y) in DataLoader(train, batchSize: 64, shuffle: true, seed: UInt64(epoch)) {
        optimizer.zeroGrad()
        let loss = CrossEntropyLoss()(model(x), y)
        loss.backward()
        optimizer.step()
        schedule.step()
        seen += Double(x.shape[0])
        lossSum += loss.doubleItem() * Double(x.shape[0])
    }
    model.eval()
    let testBatch = data.batch(test.indices)
    let accuracy = noGrad { model(testBatch.input).argmax(dim: 1).eq(testBatch.target).mean() }.doubleItem()
    model.train()
    print("epoch \(epoch + 1)  train loss \(lossSum / seen)  test accuracy \(accuracy)")
}
