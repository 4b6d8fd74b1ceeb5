// The article's custom loss: mean squared error written by hand, used to train a model.
import Ember

struct CustomLoss: Loss {
    func callAsFunction(_ input: Tensor, _ target: Tensor) -> Tensor {
        ((input - target) * (input - target)).mean()   // autograd derives its gradient
    }
}

manualSeed(0)
let model = Linear(inFeatures: 3, outFeatures: 1)
let optimizer = SGD(parameters: model.parameters(), learningRate: 0.1)
let criterion = CustomLoss()
let x = Tensor.randn([128, 3])
let trueWeight = Tensor([2, -1, 0.5], shape: [3, 1])
let y = x.matmul(trueWeight) + 0.3

for epoch in 0..<200 {
    optimizer.zeroGrad()
    let loss = criterion(model(x), y)
    loss.backward()
    optimizer.step()
    if epoch % 40 == 0 || epoch == 199 { print("epoch \(epoch)  loss \(loss.item())") }
}
// The hand-written loss agrees with the built-in one, value and gradient.
print("learned weight \(model.weight.scalars), bias \(model.bias!.scalars)")
print("CustomLoss \(criterion(model(x), y).item()) == MSELoss \(MSELoss()(model(x), y).item())")
