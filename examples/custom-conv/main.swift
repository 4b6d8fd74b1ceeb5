// The article's custom convolution layer: its own weight and bias, calling the conv2d function.
import Ember

final class CustomConv: Module {
    @Parameter var weight: Tensor
    @Parameter var bias: Tensor
    let padding: Int

    init(inChannels: Int, outChannels: Int, kernelSize: Int, padding: Int = 0) {
        // Kaiming-uniform initialisation, as nn.Conv2d does.
        let w = Init.kaimingUniform(Tensor.zeros([outChannels, inChannels, kernelSize, kernelSize]), a: 5.0.squareRoot())
        _weight = Parameter(wrappedValue: w)
        _bias = Parameter(wrappedValue: Tensor.zeros([outChannels]))
        self.padding = padding
        super.init()
    }

    override func forward(_ x: Tensor) -> Tensor {
        conv2d(x, weight: weight, bias: bias, padding: .symmetric(padding))
    }
}

manualSeed(0)
let conv = CustomConv(inChannels: 1, outChannels: 4, kernelSize: 3, padding: 1)
let images = Tensor.randn([2, 1, 8, 8])
let features = conv(images)
print("output shape:", features.shape)

// It trains like any layer: learn to reproduce a fixed edge filter.
let edge = Tensor([-1, 0, 1, -2, 0, 2, -1, 0, 1], shape: [1, 1, 3, 3])
let target = conv2d(images, weight: edge, padding: .symmetric(1))
let single = CustomConv(inChannels: 1, outChannels: 1, kernelSize: 3, padding: 1)
let optimizer = Adam(parameters: single.parameters(), learningRate: 0.05)
for step in 0..<300 {
    optimizer.zeroGrad()
    let loss = MSELoss()(single(images), target)
    loss.backward()
    optimizer.step()
    if step % 100 == 0 || step == 299 { print("step \(step)  loss \(loss.item())") }
}
print("learned kernel:", single.weight.scalars.map { ($0 * 10).rounded() / 10 })
