// The article's custom activation: a Module whose forward is the sigmoid function, in a network.
import Ember

final class CustomActivation: Module {
    override func forward(_ x: Tensor) -> Tensor {
        1 / (1 + (-x).exp())          // sigmoid written out; autograd handles the derivative
    }
}

manualSeed(0)
let act = CustomActivation()
let inputs = Tensor.randn([10, 10])
let outputs = act(inputs)
print("matches the built-in sigmoid:", outputs.allClose(inputs.sigmoid(), rtol: 1e-6))

// Used inside a model and trained on XOR.
let model = Sequential(Linear(inFeatures: 2, outFeatures: 8), CustomActivation(), Linear(inFeatures: 8, outFeatures: 1))
let optimizer = Adam(parameters: model.parameters(), learningRate: 0.05)
let x = Tensor([0, 0, 0, 1, 1, 0, 1, 1], shape: [4, 2])
let y = Tensor([0, 1, 1, 0], shape: [4, 1])
for _ in 0..<500 {
    optimizer.zeroGrad()
    let loss = BCEWithLogitsLoss()(model(x), y)
    loss.backward()
    optimizer.step()
}
print("XOR predictions:", noGrad { model(x).sigmoid() }.scalars.map { ($0 * 100).rounded() / 100 })
