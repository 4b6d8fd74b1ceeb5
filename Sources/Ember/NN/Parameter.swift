/// Marks a module property as a learnable parameter: found by `parameters()`, saved in the
/// state dict, trained by optimizers.
///
/// ```swift
/// final class Scale: Module {
///     @Parameter var weight = Tensor.ones([3])
///     override func forward(_ x: Tensor) -> Tensor { x * weight }
/// }
/// ```
@propertyWrapper
public final class Parameter {
    public var wrappedValue: Tensor {
        didSet { wrappedValue.requiresGrad = true }
    }
    public init(wrappedValue: Tensor) {
        self.wrappedValue = wrappedValue.isLeaf ? wrappedValue : wrappedValue.detach()
        self.wrappedValue.requiresGrad = true
    }
}

/// Marks a module property as a buffer: state saved in the state dict but not trained
/// (BatchNorm's running statistics).
@propertyWrapper
public final class Buffer {
    public var wrappedValue: Tensor
    public init(wrappedValue: Tensor) { self.wrappedValue = wrappedValue }
}

/// Marks a module property as an optional buffer: in the state dict when non-nil (BatchNorm's
/// running statistics, absent with `trackRunningStats: false` as in PyTorch).
@propertyWrapper
public final class OptionalBuffer {
    public var wrappedValue: Tensor?
    public init(wrappedValue: Tensor?) { self.wrappedValue = wrappedValue }
}

/// Marks a module property as an optional learnable parameter (a bias that may be absent).
@propertyWrapper
public final class OptionalParameter {
    public var wrappedValue: Tensor? {
        didSet { wrappedValue?.requiresGrad = true }
    }
    public init(wrappedValue: Tensor?) {
        self.wrappedValue = wrappedValue.map { $0.isLeaf ? $0 : $0.detach() }
        self.wrappedValue?.requiresGrad = true
    }
}

/// Parameters under names of their own (`weight_ih_l0`, `bias_hh_l1_reverse`, …), for modules
/// whose parameters depend on their arguments, like the recurrent layers. A `ParameterList`
/// property's entries join the module's parameters under exactly these names (the property's
/// own name is not a prefix), in the order appended.
public final class ParameterList {
    public private(set) var entries: [(name: String, parameter: Parameter)] = []
    public init() {}

    public func append(_ name: String, _ value: Tensor) { entries.append((name, Parameter(wrappedValue: value))) }

    public subscript(_ name: String) -> Tensor? { entries.first { $0.name == name }?.parameter.wrappedValue }
}
