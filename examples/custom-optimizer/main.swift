// The article's custom optimizer, written as it means to be: plain gradient descent on top of
// Ember's Optimizer base (which handles parameter groups, zeroGrad, state and checkpoints).
import Ember

final class CustomOptimizer: Optimizer {
    init(parameters: [Tensor], learningRate: Double) {
        super.init(paramGroups: [ParamGroup(params: parameters, learningRate: learningRate)])
    }

    /// p ← p − lr · grad
    override func update(parameter: Tensor, gradient: Tensor, state: inout [String: Tensor], group: ParamGroup) {
        parameter.copy_(parameter - gradient * Float(group.learningRate))
    }
}

manualSeed(0)
let model = Sequential(Linear(inFeatures: 4, outFeatures: 8), Tanh(), Linear(inFeatures: 8, outFeatures: 1))
let optimizer = CustomOptimizer(parameters: model.parameters(), learningRate: 0.05)
let x = Tensor.rand([64, 4])
let y = (x.sum(dim: 1, keepDim: true) * 0.5).sin()   // a smooth target to fit

for epoch in 0..<300 {
    optimizer.zeroGrad()
    let loss = MSELoss()(model(x), y)
    loss.backward()
    optimizer.step()
    if epoch % 50 == 0 || epoch == 299 { print("epoch \(epoch)  loss \(loss.item())") }
}
