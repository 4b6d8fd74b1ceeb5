// A custom differentiable function (the counterpart of torch.autograd.Function): forward and
// backward written by hand, checked with gradcheck, then used in training.
import Ember

/// Swish with a hand-written derivative: x · σ(x), d/dx = σ(x) · (1 + x · (1 − σ(x))).
enum Swish: CustomFunction {
    static func forward(_ ctx: FunctionContext, _ inputs: [Tensor]) -> Tensor {
        let x = inputs[0]
        ctx.saveForBackward(x)
        return x * x.sigmoid()
    }

    static func backward(_ ctx: FunctionContext, _ gradOutput: Tensor) -> [Tensor?] {
        let x = ctx.savedTensors[0]
        let s = x.sigmoid()
        return [gradOutput * s * (1 + x * (1 - s))]
    }
}

let x = Tensor.randn([5], dtype: .float64, generator: Generator(seed: 1), requiresGrad: true)
do {
    try gradcheck({ Swish.apply($0[0]) }, inputs: [x])
    print("gradcheck passed: the hand-written backward matches finite differences")
} catch {
    print("gradcheck failed: \(error)")
}

final class SwishNet: Module {
    let fc1 = Linear(inFeatures: 1, outFeatures: 16)
    let fc2 = Linear(inFeatures: 16, outFeatures: 1)
    override func forward(_ x: Tensor) -> Tensor { fc2(Swish.apply(fc1(x))) }
}

manualSeed(0)
let net = SwishNet()
let optimizer = Adam(parameters: net.parameters(), learningRate: 0.02)
let inputs = Tensor.arange(-3, 3, step: 0.1).reshape([-1, 1])
let targets = inputs.sin()
for step in 0..<400 {
    optimizer.zeroGrad()
    let loss = MSELoss()(net(inputs), targets)
    loss.backward()
    optimizer.step()
    if step % 100 == 0 || step == 399 { print("step \(step)  loss \(loss.item())") }
}
