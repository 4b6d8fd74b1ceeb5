/// A set of parameters that share hyperparameters, like one entry of PyTorch's `param_groups`.
public final class ParamGroup {
    public var params: [Tensor]
    public var learningRate: Double
    /// The hyperparameters under PyTorch's names (`momentum`, `weight_decay`, `beta1`, ...),
    /// booleans as 0 or 1, plus what schedules keep there (`initial_lr`): what state dicts save.
    /// Read and write them typed through `hyperparameters(_:)`.
    public var options: [String: Double] { didSet { typed = nil } }
    /// The last `hyperparameters(_:)` answer, until `options` changes: optimizers ask for every
    /// parameter at every step, and decoding the table each time was 8% of a small model's step.
    private var typed: (any OptimizerHyperparameters)?

    public init(params: [Tensor], learningRate: Double, options: [String: Double] = [:]) {
        self.params = params
        self.learningRate = learningRate
        self.options = options
    }

    /// A group holding typed hyperparameters (`SGD.Hyperparameters(momentum: 0.9)`).
    public convenience init<H: OptimizerHyperparameters>(params: [Tensor], learningRate: Double, hyperparameters: H) {
        self.init(params: params, learningRate: learningRate, options: hyperparameters.values)
    }

    /// A group that names only some options, like PyTorch's `{'params': b, 'lr': 0.1}`: `lr` and
    /// any hyperparameter under PyTorch's name. What it leaves out comes from the optimizer's
    /// defaults: pass such groups to an initialiser that takes them (`SGD(paramGroups:learningRate:…)`).
    public convenience init(params: [Tensor], options: [String: Double]) {
        var rest = options
        let lr = rest.removeValue(forKey: "lr") ?? .nan  // NaN: the optimizer's
        self.init(params: params, learningRate: lr, options: rest)
    }

    /// One hyperparameter by PyTorch's name; a name the group does not hold stops the program
    /// with its name (it never reads as 0).
    public subscript(_ key: String) -> Double {
        get {
            guard let value = options[key] else {
                fatalError("this parameter group has no hyperparameter '\(key)' (it holds \(options.keys.sorted().joined(separator: ", ")))")
            }
            return value
        }
        set { options[key] = newValue }
    }

    /// The group's hyperparameters as `H`. Stops the program naming the key when one is
    /// missing; `OptimizerHyperparameters.read` throws instead.
    public func hyperparameters<H: OptimizerHyperparameters>(_ type: H.Type) -> H {
        if let h = typed as? H { return h }
        do {
            let h = try H.read(options)
            typed = h
            return h
        } catch { fatalError("\(error)") }
    }

    /// Writes typed hyperparameters into the group (other keys stay).
    public func setHyperparameters<H: OptimizerHyperparameters>(_ hyperparameters: H) {
        options.merge(hyperparameters.values) { _, new in new }
    }
}

/// An optimizer's hyperparameters for one group as typed properties, stored under PyTorch's
/// key names (what `Optimizer.stateDict()` saves and PyTorch's `param_groups` show).
public protocol OptimizerHyperparameters {
    /// Every field under its PyTorch name (booleans as 0 or 1).
    var values: [String: Double] { get }
    /// The fields from `values`; throws `OptimizerError` naming a missing key.
    static func read(_ values: [String: Double]) throws -> Self
    /// Every PyTorch name `values` uses.
    static var keys: [String] { get }
}

extension OptimizerHyperparameters {
    /// Keys a schedule may add to a group; never a misspelt hyperparameter.
    static var scheduleKeys: Set<String> { ["initial_lr", "max_lr", "min_lr", "lr"] }

    /// Refuses keys that are neither hyperparameters of this kind nor a schedule's.
    static func checkKnown(_ values: [String: Double], optimizer: String) throws {
        let unknown = values.keys.filter { !keys.contains($0) && !scheduleKeys.contains($0) }.sorted()
        if !unknown.isEmpty {
            throw OptimizerError("\(optimizer) has no hyperparameter\(unknown.count == 1 ? "" : "s") \(unknown.map { "'\($0)'" }.joined(separator: ", ")) (it takes \(keys.joined(separator: ", ")))")
        }
    }

    /// `groups` completed as PyTorch's constructors do: a group's learning rate and each
    /// hyperparameter it leaves out come from `learningRate` and `defaults` (the optimizer's
    /// arguments); a key this optimizer does not have is an error naming it and the known ones.
    public static func completing(_ groups: [ParamGroup], defaults: Self, learningRate: Double, optimizer: String) throws -> [ParamGroup] {
        for g in groups {
            try checkKnown(g.options, optimizer: optimizer)
            if g.learningRate.isNaN { g.learningRate = learningRate }
            for (key, value) in defaults.values where g.options[key] == nil { g.options[key] = value }
        }
        return groups
    }

    /// `values[key]`, or an error naming the key.
    static func required(_ values: [String: Double], _ key: String) throws -> Double {
        guard let v = values[key] else {
            throw OptimizerError("missing hyperparameter '\(key)' (a group of this optimizer needs \(keys.joined(separator: ", ")))")
        }
        return v
    }
}

/// One hyperparameter of a typed `Hyperparameters` struct: its PyTorch key and the property it is
/// (booleans stored as 0 or 1). A table of these is each optimizer's one spelling of its keys.
public struct HyperparameterField<H> {
    public let key: String
    let get: (H) -> Double
    let set: (inout H, Double) -> Void

    public static func number(_ key: String, _ path: WritableKeyPath<H, Double>) -> Self {
        Self(key: key, get: { $0[keyPath: path] }, set: { $0[keyPath: path] = $1 })
    }

    public static func flag(_ key: String, _ path: WritableKeyPath<H, Bool>) -> Self {
        Self(key: key, get: { $0[keyPath: path] ? 1 : 0 }, set: { $0[keyPath: path] = $1 != 0 })
    }
}

/// Hyperparameters described by a table of fields: their keys, values and reading follow from it.
public protocol TabulatedHyperparameters: OptimizerHyperparameters {
    /// PyTorch's defaults.
    init()
    static var fields: [HyperparameterField<Self>] { get }
}

extension TabulatedHyperparameters {
    public static var keys: [String] { fields.map(\.key) }

    public var values: [String: Double] { Dictionary(uniqueKeysWithValues: Self.fields.map { ($0.key, $0.get(self)) }) }

    public static func read(_ values: [String: Double]) throws -> Self {
        var h = Self()
        for field in fields { field.set(&h, try required(values, field.key)) }
        return h
    }
}

/// A hyperparameter an optimizer cannot use: missing, unknown, or out of range.
public struct OptimizerError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// The base of every optimizer: parameter groups, per-parameter state, `step`, `zeroGrad` and a
/// state dict. A subclass supplies `update(parameter:gradient:state:group:)`; see `SGD` (about
/// 30 lines) for the pattern.
open class Optimizer {
    public var paramGroups: [ParamGroup]
    /// Per-parameter state tensors (momentum buffers, moment estimates, step counts), indexed by
    /// the parameter's position across all groups.
    public var state: [Int: [String: Tensor]] = [:]

    public init(paramGroups: [ParamGroup]) {
        self.paramGroups = paramGroups
        let all = paramGroups.flatMap(\.params)
        if Set(all.map(ObjectIdentifier.init)).count != all.count { fatalError("a parameter appears in more than one group") }
    }

    /// Checks every group's hyperparameters against `H` (none missing, none unknown); built-in
    /// optimizers call it from their initialisers so a misspelt key is refused at once.
    public func checkGroups<H: OptimizerHyperparameters>(_ type: H.Type) {
        do {
            for g in paramGroups {
                try H.checkKnown(g.options, optimizer: "\(Swift.type(of: self))")
                _ = try H.read(g.options)
            }
        } catch { fatalError("\(error)") }
    }

    /// Whether `update` treats every element on its own (its result for an element depends only
    /// on that element of the parameter, gradient and per-element state), so that updating a
    /// slice of a parameter equals slicing the whole update. A sharded data-parallel step
    /// (`step(slices:)`) needs it; an update with a per-tensor norm (LAMB, LARS) must leave it false.
    open var updatesElementwise: Bool { false }

    /// The learning rate of the first group (what schedules and logs usually mean).
    public var learningRate: Double {
        get { paramGroups[0].learningRate }
        set { for g in paramGroups { g.learningRate = newValue } }
    }

    /// Clears every parameter's gradient (PyTorch's default `set_to_none=True`).
    public func zeroGrad() {
        for g in paramGroups { for p in g.params { p.grad = nil } }
    }

    /// One update of every parameter that has a gradient. Gradients still being completed (a
    /// data-parallel reduction in flight) are completed first.
    public func step() {
        do { try completePendingGradients(paramGroups.lazy.flatMap(\.params)) } catch { fatalError("optimizer step: \(error)") }
        noGrad {
            var index = 0
            for group in paramGroups {
                for p in group.params {
                    defer { index += 1 }
                    guard let g = p.grad else { continue }
                    var s = state[index] ?? [:]
                    update(parameter: p, gradient: g.dtype == p.dtype ? g : g.to(p.dtype), state: &s, group: group)
                    state[index] = s
                }
            }
        }
    }

    /// Updates `parameter` in place from its `gradient`; `state` starts empty for a new parameter.
    open func update(parameter: Tensor, gradient: Tensor, state: inout [String: Tensor], group: ParamGroup) {
        fatalError("\(type(of: self)) must override update(parameter:gradient:state:group:)")
    }

    /// Increments and returns the step count kept in `state["step"]` (a float64 scalar, as PyTorch keeps it).
    public func nextStep(_ state: inout [String: Tensor]) -> Double {
        let step = (state["step"]?.doubleItem() ?? 0) + 1
        state["step"] = Tensor(scalar: step, dtype: .float64)
        return step
    }

    // MARK: State dict

    /// State tensors keyed `"<parameter index>.<name>"`, and each group's hyperparameters.
    public func stateDict() -> (tensors: [String: Tensor], groups: [[String: Double]]) {
        var tensors: [String: Tensor] = [:]
        for (i, s) in state { for (name, t) in s { tensors["\(i).\(name)"] = t } }
        let groups = paramGroups.map { g in g.options.merging(["lr": g.learningRate]) { _, lr in lr } }
        return (tensors, groups)
    }

    /// Restores what `stateDict()` returned.
    /// - Throws: `StateDictError` if the groups or tensor shapes do not fit this optimizer.
    public func loadStateDict(tensors: [String: Tensor], groups: [[String: Double]]) throws {
        guard groups.count == paramGroups.count else {
            throw StateDictError.keys(missing: ["\(paramGroups.count) parameter groups"], unexpected: ["\(groups.count) parameter groups"])
        }
        let params = paramGroups.flatMap(\.params)
        var restored: [Int: [String: Tensor]] = [:]
        for (key, t) in tensors {
            let parts = key.split(separator: ".", maxSplits: 1)
            guard parts.count == 2, let i = Int(parts[0]), i >= 0, i < params.count else {
                throw StateDictError.keys(missing: [], unexpected: [key])
            }
            let name = String(parts[1])
            if name != "step" && t.shape != params[i].shape {
                throw StateDictError.shapeMismatch(key: key, expected: params[i].shape, got: t.shape)
            }
            restored[i, default: [:]][name] = t.clone()
        }
        state = restored
        for (g, values) in zip(paramGroups, groups) {
            for (k, v) in values { if k == "lr" { g.learningRate = v } else { g.options[k] = v } }
        }
    }
}

/// Gradient clipping, as `torch.nn.utils.clip_grad_norm_` and `clip_grad_value_`.
public enum GradClip {
    /// Scales all gradients so their joint norm is at most `maxNorm`; returns the norm before.
    @discardableResult
    public static func clipNorm(_ parameters: [Tensor], maxNorm: Double, normType: Double = 2) -> Double {
        completeGradients(parameters)
        let grads = parameters.compactMap(\.grad)
        guard !grads.isEmpty else { return 0 }
        let total: Double = noGrad {
            if normType.isInfinite {
                return grads.map { $0.abs().max().doubleItem() }.max() ?? 0
            }
            let sum = grads.map { $0.abs().pow(normType).sum().doubleItem() }.reduce(0, +)
            return Foundation.pow(sum, 1 / normType)
        }
        if let c = scale(norm: total, maxNorm: maxNorm) {
            noGrad { for g in grads { g.copy_(g * g.scalarLike(c)) } }
        }
        return total
    }

    /// The factor `clipNorm` multiplies gradients by when their joint norm is `norm`, or nil
    /// when they are left alone (shared with sharded steps, which compute the norm in pieces).
    public static func scale(norm: Double, maxNorm: Double) -> Double? {
        let coefficient = maxNorm / (norm + 1e-6)
        return coefficient < 1 ? coefficient : nil
    }

    private static func completeGradients(_ parameters: [Tensor]) {
        do { try completePendingGradients(parameters) } catch { fatalError("gradient clipping: \(error)") }
    }

    /// Clamps every gradient element to `[-clipValue, clipValue]`.
    public static func clipValue(_ parameters: [Tensor], clipValue: Double) {
        completeGradients(parameters)
        noGrad { for g in parameters.compactMap(\.grad) { g.copy_(g.clamp(min: -clipValue, max: clipValue)) } }
    }
}

import Foundation
