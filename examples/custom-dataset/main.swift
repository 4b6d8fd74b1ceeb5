// The article's custom dataset and loader: a type holding data and labels, with count and
// subscript, fed to a DataLoader with batch size 32 and shuffling.
import Ember

struct CustomDataset: Dataset {
    let data: Tensor
    let labels: Tensor

    var count: Int { data.shape[0] }

    subscript(_ index: Int) -> (input: Tensor, target: Tensor) {
        (data[index], labels[index])
    }
}

manualSeed(0)
// Two noisy clusters to tell apart.
let n = 512
let labels = Tensor.randint(high: 2, [n])
let centres = Tensor([-1, -1, 1, 1], shape: [2, 2])
let data = centres.indexSelect(dim: 0, index: labels) + Tensor.randn([n, 2]) * 0.6
let dataset = CustomDataset(data: data, labels: labels)
let loader = DataLoader(dataset, batchSize: 32, shuffle: true, seed: 0)

let model = Sequential(Linear(inFeatures: 2, outFeatures: 16), ReLU(), Linear(inFeatures: 16, outFeatures: 2))
let optimizer = SGD(parameters: model.parameters(), learningRate: 0.1, momentum: 0.9)
let criterion = CrossEntropyLoss()

for epoch in 0..<10 {
    var total = 0.0, correct = 0.0
    for (inputs, targets) in loader {
        optimizer.zeroGrad()
        let outputs = model(inputs)
        let loss = criterion(outputs, targets)
        loss.backward()
        optimizer.step()
        total += loss.doubleItem() * Double(inputs.shape[0])
        correct += noGrad { outputs.argmax(dim: 1).eq(targets).sum() }.doubleItem()
    }
    print("epoch \(epoch)  loss \(total / Double(n))  accuracy \(correct / Double(n))")
}
