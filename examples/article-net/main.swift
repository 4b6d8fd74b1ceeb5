// The article's training example: Net(10 → 5 → 1) fitted with MSE and SGD for 1000 epochs.
// (The original never zeroes gradients, so they pile up across epochs; here each step starts
// from zero, which is what the code means to do.)
import Ember

final class Net: Module {
    let fc1 = Linear(inFeatures: 10, outFeatures: 5)
    let fc2 = Linear(inFeatures: 5, outFeatures: 1)

    override func forward(_ x: Tensor) -> Tensor {
        fc2(fc1(x).relu())
    }
}

manualSeed(0)
let net = Net()
let criterion = MSELoss()
let optimizer = SGD(parameters: net.parameters(), learningRate: 0.01)

let inputs = Tensor.randn([100, 10])
let targets = Tensor.randn([100, 1])

for epoch in 0..<1000 {
    optimizer.zeroGrad()
    let outputs = net(inputs)               // forward
    let loss = criterion(outputs, targets)
    loss.backward()                         // backward
    optimizer.step()                        // update the weights
    if epoch % 100 == 0 || epoch == 999 {
        print("epoch \(epoch)  loss \(loss.item())")
    }
}
print(net.summary())
