// The article's custom layer: a Module holding a Linear layer and a ReLU.
import Ember

final class CustomLayer: Module {
    let linear: Linear
    let relu = ReLU()

    init(inFeatures: Int, outFeatures: Int) {
        linear = Linear(inFeatures: inFeatures, outFeatures: outFeatures)
        super.init()
    }

    override func forward(_ x: Tensor) -> Tensor {
        relu(linear(x))
    }
}

manualSeed(0)
let net = CustomLayer(inFeatures: 10, outFeatures: 5)
let inputs = Tensor.randn([10, 10])
let outputs = net(inputs)
print("output shape:", outputs.shape)
print("parameters:", net.namedParameters().map { "\($0.0) \($0.1.shape)" })
print(outputs)
