/// Runs modules in order; their state-dict keys are `0.weight`, `1.bias`, ... as in PyTorch.
public final class Sequential: Module {
    public private(set) var layers: [Module]

    public init(_ layers: Module...) {
        self.layers = layers
        super.init()
    }

    public init(_ layers: [Module]) {
        self.layers = layers
        super.init()
    }

    public func append(_ layer: Module) { layers.append(layer) }

    public override var namedChildren: [(String, Module)] {
        layers.enumerated().map { ("\($0.offset)", $0.element) }
    }

    public override func forward(_ x: Tensor) -> Tensor {
        layers.reduce(x) { $1($0) }
    }

    public subscript(_ i: Int) -> Module { layers[i] }
    public var count: Int { layers.count }
}
