/// The base class of every layer and model, like `torch.nn.Module`.
///
/// Parameters (`@Parameter`), buffers (`@Buffer`) and submodules (properties holding a `Module`,
/// an array of modules or a dictionary of them) are found by reflection and named with dotted
/// keys that match PyTorch's for the same structure: `fc1.weight`, `layers.0.bias`. Reflection
/// runs once per module, the first time its structure is asked for; a module that later puts
/// another submodule (or parameter wrapper) in a property calls `structureChanged()`. Assigning
/// a new tensor to a `@Parameter` property needs nothing.
///
/// ```swift
/// final class Net: Module {
///     let fc1 = Linear(inFeatures: 10, outFeatures: 5)
///     let fc2 = Linear(inFeatures: 5, outFeatures: 1)
///     override func forward(_ x: Tensor) -> Tensor { fc2(fc1(x).relu()) }
/// }
/// ```
open class Module {
    /// Whether the module is in training mode (Dropout drops, BatchNorm uses batch statistics).
    public private(set) var isTraining = true

    public init() {}

    /// The computation; subclasses override it.
    open func forward(_ x: Tensor) -> Tensor {
        fatalError("\(type(of: self)) must override forward(_:)")
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { forward(x) }

    // MARK: Reflection

    private enum Entry {
        case parameter(Parameter)
        case optionalParameter(OptionalParameter)
        case buffer(Buffer)
        case optionalBuffer(OptionalBuffer)
        case module(Module)
    }

    /// What reflection found, kept: a `Mirror` walk costs microseconds per module, and
    /// `parameters()` is called every step by some loops.
    private var cachedEntries: [(String, Entry)]?

    /// Forgets what reflection found about this module, for one that replaced a submodule or
    /// parameter wrapper stored in a property after its structure was first read.
    public func structureChanged() { cachedEntries = nil }

    /// Properties of this object (base classes first) in declaration order.
    private func reflectedEntries() -> [(String, Entry)] {
        if let cachedEntries { return cachedEntries }
        let entries = reflect()
        cachedEntries = entries
        return entries
    }

    private func reflect() -> [(String, Entry)] {
        var mirrors: [Mirror] = []
        var m: Mirror? = Mirror(reflecting: self)
        while let current = m {
            mirrors.insert(current, at: 0)
            m = current.superclassMirror
        }
        var entries: [(String, Entry)] = []
        for mirror in mirrors {
            for child in mirror.children {
                guard var label = child.label else { continue }
                if label.hasPrefix("_") { label.removeFirst() }
                if label.hasPrefix("$__lazy_storage_$_") { label.removeFirst("$__lazy_storage_$_".count) }
                collect(child.value, Module.snakeCase(label), into: &entries)
            }
        }
        return entries
    }

    /// Swift's `runningMean` is PyTorch's `running_mean`: keys use snake case so state dicts match.
    static func snakeCase(_ name: String) -> String {
        var out = ""
        for ch in name {
            if ch.isUppercase {
                if !out.isEmpty { out.append("_") }
                out.append(contentsOf: ch.lowercased())
            } else {
                out.append(ch)
            }
        }
        return out
    }

    private func collect(_ value: Any, _ label: String, into entries: inout [(String, Entry)]) {
        switch value {
        case let p as Parameter: entries.append((label, .parameter(p)))
        case let list as ParameterList:
            for (name, p) in list.entries { entries.append((name, .parameter(p))) }
        case let p as OptionalParameter: entries.append((label, .optionalParameter(p)))
        case let b as Buffer: entries.append((label, .buffer(b)))
        case let b as OptionalBuffer: entries.append((label, .optionalBuffer(b)))
        case let m as Module: entries.append((label, .module(m)))
        case let ms as [Module]:
            for (i, m) in ms.enumerated() { entries.append(("\(label).\(i)", .module(m))) }
        case let ms as [String: Module]:
            for key in ms.keys.sorted() { entries.append(("\(label).\(key)", .module(ms[key]!))) }
        case let m as Module?:
            if let m { entries.append((label, .module(m))) }
        default: break
        }
    }

    /// Direct submodules with their names. Containers override this (Sequential names them 0, 1, ...).
    open var namedChildren: [(String, Module)] {
        reflectedEntries().compactMap { name, entry in
            if case .module(let m) = entry { return (name, m) }
            return nil
        }
    }

    public var children: [Module] { namedChildren.map(\.1) }

    /// This module's own parameters (not its children's).
    private var ownParameters: [(String, Tensor)] {
        reflectedEntries().compactMap { name, entry in
            switch entry {
            case .parameter(let p): return (name, p.wrappedValue)
            case .optionalParameter(let p): return p.wrappedValue.map { (name, $0) }
            default: return nil
            }
        }
    }

    private var ownBuffers: [(String, Tensor)] {
        reflectedEntries().compactMap { name, entry in
            switch entry {
            case .buffer(let b): return (name, b.wrappedValue)
            case .optionalBuffer(let b): return b.wrappedValue.map { (name, $0) }
            default: return nil
            }
        }
    }

    /// Every module in the tree with its dotted name ("" for this one), depth first.
    public func namedModules(prefix: String = "") -> [(String, Module)] {
        var out: [(String, Module)] = [(prefix, self)]
        for (name, child) in namedChildren {
            out += child.namedModules(prefix: prefix.isEmpty ? name : "\(prefix).\(name)")
        }
        return out
    }

    /// Every parameter in the tree with its PyTorch-style key, in registration order.
    public func namedParameters() -> [(String, Tensor)] {
        namedModules().flatMap { prefix, m in
            m.ownParameters.map { (prefix.isEmpty ? $0.0 : "\(prefix).\($0.0)", $0.1) }
        }
    }

    public func parameters() -> [Tensor] { namedParameters().map(\.1) }

    /// Every buffer in the tree with its key.
    public func namedBuffers() -> [(String, Tensor)] {
        namedModules().flatMap { prefix, m in
            m.ownBuffers.map { (prefix.isEmpty ? $0.0 : "\(prefix).\($0.0)", $0.1) }
        }
    }

    /// Number of scalars in all parameters.
    public var parameterCount: Int { parameters().reduce(0) { $0 + $1.count } }

    // MARK: Modes

    /// Calls `body` on every module in the tree (this one last), like `Module.apply`.
    @discardableResult
    public func apply(_ body: (Module) -> Void) -> Self {
        for child in children { child.apply(body) }
        body(self)
        return self
    }

    /// Training mode for the whole tree.
    @discardableResult
    public func train(_ mode: Bool = true) -> Self {
        apply { $0.isTraining = mode }
    }

    /// Evaluation mode for the whole tree.
    @discardableResult
    public func eval() -> Self { train(false) }

    /// Converts every floating-point parameter and buffer to `dtype` (PyTorch's `model.double()`
    /// / `model.to(dtype)`); call it before building an optimizer, which holds the tensors.
    @discardableResult
    public func to(_ dtype: DType) -> Self {
        require(dtype.isFloatingPoint, "Module.to: \(dtype) is not a floating-point dtype")
        return apply { m in
            for (_, entry) in m.reflectedEntries() {
                switch entry {
                case .parameter(let p) where p.wrappedValue.dtype.isFloatingPoint:
                    p.wrappedValue = noGrad { p.wrappedValue.to(dtype) }
                case .optionalParameter(let p) where p.wrappedValue?.dtype.isFloatingPoint == true:
                    p.wrappedValue = noGrad { p.wrappedValue!.to(dtype) }
                case .buffer(let b) where b.wrappedValue.dtype.isFloatingPoint:
                    b.wrappedValue = b.wrappedValue.to(dtype)
                case .optionalBuffer(let b) where b.wrappedValue?.dtype.isFloatingPoint == true:
                    b.wrappedValue = b.wrappedValue!.to(dtype)
                default: break
                }
            }
        }
    }

    /// Clears every parameter's gradient.
    public func zeroGrad() {
        for p in parameters() { p.grad = nil }
    }

    /// Freezes (false) or unfreezes (true) every parameter.
    @discardableResult
    public func requiresGrad_(_ value: Bool = true) -> Self {
        for p in parameters() {
            if value { p.requiresGrad = true } else { p.leafRequiresGrad = false }
        }
        return self
    }

    // MARK: State dict

    /// Parameters and buffers by key (PyTorch's keys for the same structure).
    public func stateDict() -> [String: Tensor] {
        Dictionary(namedParameters() + namedBuffers(), uniquingKeysWith: { a, _ in a })
    }

    /// Keys of `stateDict()` in registration order (parameters, then buffers, as PyTorch orders
    /// them per module).
    public func stateDictKeys() -> [String] {
        namedModules().flatMap { prefix, m in
            (m.ownParameters + m.ownBuffers).map { prefix.isEmpty ? $0.0 : "\(prefix).\($0.0)" }
        }
    }

    /// Copies values from `dict` into this module's parameters and buffers, in place (optimizers
    /// holding the parameters keep working).
    ///
    /// - Throws: `StateDictError` for missing or unexpected keys (when `strict`) or a shape
    ///   mismatch; nothing is modified when it throws.
    public func loadStateDict(_ dict: [String: Tensor], strict: Bool = true) throws {
        let own = try stateDictTargets(dict.mapValues(\.shape), strict: strict)
        noGrad {
            for (key, target) in own {
                if let source = dict[key] { target.copy_(source) }
            }
        }
    }

    /// The parameters and buffers a state dict of these keys and shapes would load into, by key,
    /// after checking it as `loadStateDict` does (so a loader that reads one tensor at a time
    /// refuses the same dicts before it changes anything).
    func stateDictTargets(_ shapes: [String: [Int]], strict: Bool = true) throws -> [String: Tensor] {
        let own = Dictionary(namedParameters() + namedBuffers(), uniquingKeysWith: { a, _ in a })
        let missing = own.keys.filter { shapes[$0] == nil }.sorted()
        let unexpected = shapes.keys.filter { own[$0] == nil }.sorted()
        if strict && (!missing.isEmpty || !unexpected.isEmpty) {
            throw StateDictError.keys(missing: missing, unexpected: unexpected)
        }
        for (key, target) in own {
            guard let shape = shapes[key] else { continue }
            guard shape == target.shape else { throw StateDictError.shapeMismatch(key: key, expected: target.shape, got: shape) }
        }
        return own
    }

    // MARK: Printing

    /// One line per module with its parameter count, and the total.
    public func summary() -> String {
        var lines: [String] = []
        for (name, m) in namedModules() {
            let depth = name.isEmpty ? 0 : name.split(separator: ".").count
            let own = m.ownParameters.reduce(0) { $0 + $1.1.count }
            let label = name.isEmpty ? "\(type(of: m))" : "(\(name.split(separator: ".").last!)): \(m.extraDescription.isEmpty ? "\(type(of: m))" : "\(type(of: m))(\(m.extraDescription))")"
            lines.append(String(repeating: "  ", count: depth) + label + (own > 0 ? "  [\(own) params]" : ""))
        }
        lines.append("Total parameters: \(parameterCount)")
        return lines.joined(separator: "\n")
    }

    /// Constructor arguments shown by `summary()` (`in_features=10, out_features=5`).
    open var extraDescription: String { "" }
}

/// Why `loadStateDict` refused a state dict.
public enum StateDictError: Error, CustomStringConvertible, Equatable {
    case keys(missing: [String], unexpected: [String])
    case shapeMismatch(key: String, expected: [Int], got: [Int])

    public var description: String {
        switch self {
        case .keys(let missing, let unexpected):
            var parts: [String] = []
            if !missing.isEmpty { parts.append("missing keys: \(missing.joined(separator: ", "))") }
            if !unexpected.isEmpty { parts.append("unexpected keys: \(unexpected.joined(separator: ", "))") }
            return "state dict does not match the model: " + parts.joined(separator: "; ")
        case .shapeMismatch(let key, let expected, let got):
            return "state dict entry '\(key)' has shape \(got) but the model expects \(expected)"
        }
    }
}
